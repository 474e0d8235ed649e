// Package dnssec holds the DNSSEC primitives of the pool zone (issue 13):
// zone keys, RRset signatures and the NSEC chain that proves denial of
// existence. It follows RFC 4033, RFC 4034 and RFC 4035, with the canonical
// form and ordering of RFC 4034 section 6 and the NSEC TTL of RFC 9077.
//
// It owns:
//
//   - keys (key.go, keyfile.go, keygen.go): a Key is one DNSKEY with its key
//     tag and, for this site's own keys, a crypto.Signer; peer keys (the
//     other sites' public keys in the multi-signer model of RFC 8901 section
//     2.1.2, model 2) have none. Keys are read from and written to BIND 9's
//     key files (K<zone>+<alg>+<tag>.key and .private, as dnssec-keygen
//     writes them), algorithms 13 (ECDSAP256SHA256) and 15 (ED25519) only.
//     A Key never formats its private material: not in String, not in an
//     error, not in JSON.
//   - signing (keyset.go, sign.go, expiry.go): a KeySet signs an RRset with
//     every own key and builds the DNSKEY RRset of own and peer keys; Valid
//     and NeedsRefresh say whether a set of signatures may still be served
//     and when it must be replaced.
//   - denial of existence (canonical.go, nsec.go, deny.go): the canonical
//     name order, the NSEC chain of a small, fully known zone, and which of
//     its records prove a NODATA or NXDOMAIN answer. Chain.Cover and
//     Chain.DenyWire work on wire-format names without allocating, for use
//     on the query path.
//
// It is pure: no sockets, no goroutines, no logging, and time is always
// passed in. The only files it touches are the ones Keygen and
// WriteKeyFiles write and the ones the caller's ReadFunc reads. It does not
// read the configuration, decide when to sign, serve answers, set the DO,
// TC or AD bits, or choose which signatures go into a reply: the DNS server
// and the daemon do, with these primitives.
package dnssec
