package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// selfCPU returns the user plus system CPU time this process has used so far
// (getrusage RUSAGE_SELF: every thread, the garbage collector included).
func selfCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// userHZ is the unit of utime and stime in /proc/PID/stat: USER_HZ, which
// Linux fixes at 100 for user space whatever the kernel's HZ.
const userHZ = 100

// procCPU returns the user plus system CPU time process pid has used so far,
// from /proc/PID/stat (10 ms resolution).
func procCPU(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatalf("read cpu time of pid %d: %v", pid, err)
	}
	// The command name is in parentheses and may hold spaces: the fields
	// after the last ')' start with state (field 3), so utime (14) and
	// stime (15) are at 11 and 12 from there.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		tb.Fatalf("/proc/%d/stat: %d fields after the command name, want at least 13", pid, len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			tb.Fatalf("/proc/%d/stat: bad cpu time %q", pid, f)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ
}

// msPerOp is d spread over n operations, in milliseconds.
func msPerOp(d time.Duration, n int) float64 {
	return float64(d) / float64(time.Millisecond) / float64(n)
}
