package dnssec

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// rfc4034Order is the example of RFC 4034 section 6.1, in canonical order.
var rfc4034Order = []string{
	"example.",
	"a.example.",
	"yljkjljk.a.example.",
	"Z.a.example.",
	"zABC.a.EXAMPLE.",
	"z.example.",
	`\001.z.example.`,
	"*.z.example.",
	`\200.z.example.`,
}

func TestCompareRFC4034Example(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20; i++ {
		names := slices.Clone(rfc4034Order)
		rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
		slices.SortStableFunc(names, Compare)
		if !slices.Equal(names, rfc4034Order) {
			t.Fatalf("sorted:\n%q\nwant:\n%q", names, rfc4034Order)
		}
	}
	for i, a := range rfc4034Order {
		wa, _ := wireName(a)
		for j, b := range rfc4034Order {
			wb, _ := wireName(b)
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := Compare(a, b); got != want {
				t.Errorf("Compare(%q, %q) = %d, want %d", a, b, got, want)
			}
			if got := CompareWire(wa, wb); got != want {
				t.Errorf("CompareWire(%q, %q) = %d, want %d", a, b, got, want)
			}
		}
	}
}

func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"API.pool.domain.tld.", "api.POOL.domain.tld.", 0},
		{"pool.domain.tld", "pool.domain.tld.", 0},
		{"a.b.", "b.", 1},         // a descendant sorts after its ancestor
		{"b.", "a.b.", -1},        //
		{"ab.", "a.b.", -1},       // rightmost label first: "ab" < "b"
		{"a.", "aa.", -1},         // a prefix sorts first
		{"x.", "a.x.", -1},        // an empty non-terminal before its children
		{"www.x.", "a.x.", 1},     //
		{`a\.b.c.`, "a.b.c.", -1}, // one label "a.b" under c, before "b"
		{"a..b.", "a.b.", 1},      // invalid names sort last
		{"a.b.", "a..b.", -1},
	} {
		if got := Compare(tc.a, tc.b); got != tc.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestCompareWireMalformed(t *testing.T) {
	good, _ := wireName("api." + zone)
	c := smallZone(t, nil).chain(t)
	long := make([]byte, 300)
	for i := range long {
		long[i] = 1
	}
	deep := append(append([]byte{}, long[:250]...), good...)
	for _, bad := range [][]byte{nil, {}, {0}, {5, 'a'}, {0xC0, 0x0C}, {3, 'a', 'b', 'c'}, {0x40, 'a', 0}, long, deep} {
		// No panic; a malformed name compares as its good labels.
		_ = CompareWire(bad, good)
		_ = CompareWire(good, bad)
		lb, lg := parseLabels(bad), parseLabels(good)
		_ = isBelow(&lb, good)
		_ = isBelow(&lg, bad)
		_ = c.Cover(bad)
		if d := c.DenyWire(bad, 1); d.Result != OutOfZone && d.Result != NXDomain {
			t.Errorf("DenyWire(%v) = %v, want OUTOFZONE or NXDOMAIN", bad, d)
		}
	}
}

func TestCompareWireAllocs(t *testing.T) {
	a, _ := wireName("zABC.a.EXAMPLE.")
	b, _ := wireName(`\200.z.example.`)
	if n := testing.AllocsPerRun(100, func() { CompareWire(a, b) }); n != 0 {
		t.Errorf("CompareWire allocates %v times", n)
	}
}
