// Package bench holds Go-side benchmarks that measure spdu-haproxy against a
// real HAProxy, such as BenchmarkPollCost: the CPU time of one poll of a
// large backend (runtime API read, parse, health and weight evaluation), next
// to client-native's own GetStats. It has no code of its own besides this
// comment: the benchmarks are test files, run by `scripts/bench.sh poll`. It
// owns no behaviour of the daemon and nothing imports it. The DNS load
// benchmark against Knot, NSD and gdnsd is scripts/bench.sh itself.
package bench
