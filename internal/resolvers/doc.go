// Package resolvers starts real recursive resolvers, iterating from a local
// DNS hierarchy on loopback addresses, for spdu-haproxy's tests. It is
// imported only by tests, like internal/testenv.
//
// It owns:
//   - the hierarchy (StartHierarchy): one Knot DNS process (Debian's knotd)
//     on a loopback address, port 53, authoritative for a root zone ".",
//     "tld." and "domain.tld.", which delegates "pool.domain.tld." to the
//     caller's nameservers with glue and holds the service name
//     "api.domain.tld. CNAME api.pool.domain.tld.", with every TTL a
//     parameter and optional DS records for the pool zone;
//   - starters for four recursive resolvers with root hints pointing at that
//     root (Start, StartUnbound, StartBIND, StartPowerDNS, StartKnot):
//     unbound, BIND 9 named, PowerDNS Recursor and Knot Resolver (kresd),
//     each on its own loopback address, with the settings they need to query
//     loopback nameservers, a small cache, an optional trust anchor and its
//     log kept for the test;
//   - a client that samples a name through several resolvers at a fixed
//     interval (StartSampler), and a small authoritative stub for the pool
//     zone whose answers can be switched to REFUSED or silence (StartStub).
//
// Everything listens on 127.0.0.0/8 only, every wait is bounded, and
// everything is stopped by t.Cleanup. A missing program fails the test (CI
// installs the Debian packages: knot, unbound, bind9, pdns-recursor,
// knot-resolver); it is never skipped.
//
// It does not start spdu-haproxy or HAProxy (the research test of this
// package does that itself, with internal/testenv), and it does not sign
// zones: PoolDS leaves room for a signed pool zone later.
package resolvers
