package dnssec

import (
	"bytes"

	"github.com/miekg/dns"
)

// maxLabels is the most labels a wire-format name of 255 octets can have
// (126 one-octet labels and the root).
const maxLabels = 128

// Compare orders the presentation-format domain names a and b (absolute or
// not; "\." and "\DDD" escapes allowed) in the canonical DNS name order of
// RFC 4034 section 6.1: label by label from the most significant (rightmost),
// each label as a case-insensitive (US-ASCII) octet string where a shorter
// label that is a prefix of a longer one sorts first, and a name sorts
// before its descendants. It returns -1, 0 or +1. A name that is not a
// valid domain name (too long, empty label) sorts after every valid name,
// and invalid names among themselves by their bytes. It allocates; use
// CompareWire on the query path.
func Compare(a, b string) int {
	wa, okA := wireName(a)
	wb, okB := wireName(b)
	switch {
	case okA && okB:
		return CompareWire(wa, wb)
	case okA:
		return -1
	case okB:
		return 1
	}
	return bytes.Compare([]byte(a), []byte(b))
}

// wireName returns the uncompressed wire format of the presentation-format
// name s (made absolute), or false when s is not a valid name.
func wireName(s string) ([]byte, bool) {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.Fqdn(s), buf, 0, nil, false)
	if err != nil {
		return nil, false
	}
	return buf[:n:n], true
}

// labels is an uncompressed wire-format name with the offsets of its
// labels' length octets, the root excluded, so that names can be compared
// from their last label without parsing them again.
type labels struct {
	name []byte
	n    int              // number of labels in offs
	offs [maxLabels]uint8 // offs[:n] are valid
}

// parseLabels returns the labels of the wire-format name w. It stops at the
// root, at a compression pointer or reserved label type, or where a label
// would run past the end of w: a malformed name has the labels before its
// fault. It returns a value, not a pointer, so that w does not escape.
func parseLabels(w []byte) (l labels) {
	l.name = w
	for off := 0; off < len(w) && off < 256 && l.n < maxLabels; {
		ll := int(w[off])
		if ll == 0 || ll&0xC0 != 0 || off+1+ll > len(w) {
			break
		}
		l.offs[l.n] = uint8(off)
		l.n++
		off += 1 + ll
	}
	return l
}

// label returns the octets of label i (0 is the leftmost).
func (l *labels) label(i int) []byte {
	off := int(l.offs[i])
	return l.name[off+1 : off+1+int(l.name[off])]
}

// parent returns the ancestor of l that has its labels from i on.
func (l *labels) parent(i int) (p labels) {
	base := l.offs[i]
	p.name, p.n = l.name[base:], l.n-i
	for j := 0; j < p.n; j++ {
		p.offs[j] = l.offs[i+j] - base
	}
	return p
}

// CompareWire orders the uncompressed wire-format names a and b as Compare
// does (RFC 4034 section 6.1), folding US-ASCII case itself, so the names
// need not be lower-case. It does not allocate. A malformed name compares
// as its labels up to the first fault (a compression pointer or a label
// running past the end).
func CompareWire(a, b []byte) int {
	la, lb := parseLabels(a), parseLabels(b)
	return compareLabels(&la, &lb)
}

// compareLabels is CompareWire on parsed names.
func compareLabels(a, b *labels) int {
	for i, j := a.n-1, b.n-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if c := compareLabel(a.label(i), b.label(j)); c != 0 {
			return c
		}
	}
	switch {
	case a.n < b.n:
		return -1
	case a.n > b.n:
		return 1
	}
	return 0
}

// compareLabel compares two labels' octets with US-ASCII upper case read
// as lower case; a prefix sorts first.
func compareLabel(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := lower(a[i]), lower(b[i])
		if ca != cb {
			if ca < cb {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// isBelow reports whether child is a proper descendant of the wire-format
// name parent (case-insensitive). It does not allocate.
func isBelow(child *labels, parent []byte) bool {
	for i := 1; i < child.n; i++ {
		if equalFoldWire(child.name[child.offs[i]:], parent) {
			return true
		}
	}
	// parent may be the root.
	return child.n > 0 && len(parent) == 1 && parent[0] == 0
}

// equalFoldWire reports whether two wire-format names are equal, US-ASCII
// case folded.
func equalFoldWire(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}
