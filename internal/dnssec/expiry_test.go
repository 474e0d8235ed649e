package dnssec

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestRefreshFakeClock signs at one instant and then moves a fake clock
// across the signature set's life.
func TestRefreshFakeClock(t *testing.T) {
	const refresh = 7 * 24 * time.Hour
	for _, start := range []struct {
		name string
		at   time.Time
	}{
		{"2026", testNow},
		// Expiration past 2106-02-07T06:28:16Z wraps to a small number:
		// RFC 1982 arithmetic must still read it as after the inception.
		{"across 2^32 seconds", time.Unix(1<<32-3*24*3600, 0)},
	} {
		t.Run(start.name, func(t *testing.T) {
			now := start.at
			ks := newKeySet(t, []*Key{newKey(t, ECDSAP256SHA256), newKey(t, ED25519)}, nil)
			var sigs []*dns.RRSIG
			for _, set := range smallZone(t, ks).rrsets {
				s, err := ks.Sign(set, now, DefaultValidity)
				if err != nil {
					t.Fatal(err)
				}
				sigs = append(sigs, s...)
			}
			// One RRset signed an hour later expires an hour later: the
			// set's expiration is the earliest.
			late, err := ks.Sign([]dns.RR{mustRR(t, "www."+zone+" 30 IN A 192.0.2.20")}, now.Add(time.Hour), DefaultValidity)
			if err != nil {
				t.Fatal(err)
			}
			sigs = append(sigs, late...)
			exp := now.Add(DefaultValidity)
			if at, ok := RefreshAt(sigs, now, refresh); !ok || !at.Equal(exp.Add(-refresh)) {
				t.Errorf("RefreshAt = %v, %v; want %v", at, ok, exp.Add(-refresh))
			}
			if inc, e, ok := Window(sigs, now); !ok || !inc.Equal(now) || !e.Equal(exp) {
				t.Errorf("Window = %v, %v, %v; want %v (latest inception, backdated), %v", inc, e, ok, now, exp)
			}
			for _, tc := range []struct {
				name          string
				at            time.Time
				valid, refres bool
			}{
				{"before the latest inception", now.Add(-time.Second), false, true},
				{"at signing", now, true, false},
				{"a day later", now.Add(24 * time.Hour), true, false},
				{"just before the refresh point", exp.Add(-refresh), true, false},
				{"past the refresh point", exp.Add(-refresh + time.Second), true, true},
				{"at expiration", exp, true, true},
				{"half a second past expiration", exp.Add(500 * time.Millisecond), true, true},
				{"expired", exp.Add(time.Second), false, true},
				{"long expired", exp.Add(30 * 24 * time.Hour), false, true},
				{"69 years later", now.Add(69 * 365 * 24 * time.Hour), false, true},
			} {
				t.Run(tc.name, func(t *testing.T) {
					if got := Valid(sigs, tc.at); got != tc.valid {
						t.Errorf("Valid = %v, want %v", got, tc.valid)
					}
					if got := NeedsRefresh(sigs, tc.at, refresh); got != tc.refres {
						t.Errorf("NeedsRefresh = %v, want %v", got, tc.refres)
					}
				})
			}
		})
	}
}

func TestRefreshEmpty(t *testing.T) {
	if Valid(nil, testNow) {
		t.Error("an empty signature set is Valid")
	}
	if !NeedsRefresh(nil, testNow, DefaultRefresh) {
		t.Error("an empty signature set does not need a refresh")
	}
	if _, ok := RefreshAt(nil, testNow, DefaultRefresh); ok {
		t.Error("RefreshAt of an empty set is ok")
	}
}

// TestExpiredNeverValid: one expired signature among fresh ones makes the
// whole set invalid, at every instant after its expiration up to 100 years
// (RFC 1982 arithmetic reads 32-bit times modulo 136 years).
func TestExpiredNeverValid(t *testing.T) {
	ks := newKeySet(t, []*Key{newKey(t, ED25519)}, nil)
	set := []dns.RR{mustRR(t, "api."+zone+" 30 IN A 192.0.2.1")}
	old, err := ks.Sign(set, testNow, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for d := time.Hour + time.Second; d < 100*365*24*time.Hour; d = d*3/2 + time.Second {
		now := testNow.Add(d)
		fresh, err := ks.Sign(set, now, DefaultValidity)
		if err != nil {
			t.Fatal(err)
		}
		if Valid(append(fresh, old...), now) {
			t.Fatalf("%v after signing: a set with a signature that expired is Valid", d)
		}
		if !Valid(fresh, now) {
			t.Fatalf("%v after signing: a fresh set is not Valid", d)
		}
	}
}

func TestCheckTiming(t *testing.T) {
	day := 24 * time.Hour
	for _, tc := range []struct {
		validity, refresh time.Duration
		want              string
	}{
		{DefaultValidity, DefaultRefresh, ""},
		{2 * time.Hour, time.Hour, ""},
		{2*time.Hour - time.Second, time.Hour, "leaves less than 1h0m0s between a refresh (1h0m0s) and expiry"},
		{DefaultValidity, 0, "refresh 0s must be above zero"},
		{DefaultValidity, -time.Hour, "must be above zero"},
		{7 * day, 7 * day, "must be longer than refresh"},
		{day, 2 * day, "must be longer than refresh"},
		{69 * 365 * day, day, "too long"},
	} {
		t.Run(tc.validity.String()+"/"+tc.refresh.String(), func(t *testing.T) {
			err := CheckTiming(tc.validity, tc.refresh)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("CheckTiming = %v, want %q", err, tc.want)
			}
		})
	}
}
