package bench

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxRSS is the peak resident set of an exited process, in KiB.
func maxRSS(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss
	}
	return 0
}

// clockTick is USER_HZ, 100 on every Linux the benchmark targets.
const clockTick = 100

// findServer returns the pid of the mariadbd or mysqld at the other end of
// the benchmark's connection, 0 when unknown: the pid in the server's
// pid_file when this machine can read it, else the only such process
// running (with two, e.g. a second instance on another port, the scan
// cannot tell which one is measured).
func findServer(pidFile string) int {
	if b, err := os.ReadFile(pidFile); pidFile != "" && err == nil {
		if pid, err := strconv.Atoi(string(bytes.TrimSpace(b))); err == nil && isServer(pid) {
			return pid
		}
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	found := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !isServer(pid) {
			continue
		}
		if found != 0 {
			return 0
		}
		found = pid
	}
	return found
}

// isServer reports whether pid is a running mariadbd or mysqld.
func isServer(pid int) bool {
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return false
	}
	switch string(bytes.TrimSpace(comm)) {
	case "mariadbd", "mysqld":
		return true
	}
	return false
}

// serverCPU is the user+system CPU time of pid so far, 0 when unknown.
func serverCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(u+s) * time.Second / clockTick
}

// selfCPU is this process's user+system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
