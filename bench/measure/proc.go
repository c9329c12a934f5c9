package measure

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// userHZ is the unit of the CPU times in /proc/PID/stat. The kernel
// exports USER_HZ, which is 100 on every Linux architecture Go supports.
const userHZ = 100

// cpuTimes reads a process's CPU time in seconds from /proc/PID/stat:
// its own user+system time (all threads), and that of the children it
// has waited for.
func cpuTimes(pid int) (self, children float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// the fields that follow the last ')' are plain numbers.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime, stime, cutime, cstime are fields
	// 14 to 17.
	if len(f) < 15 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	var v [4]float64
	for j := range v {
		n, err := strconv.ParseInt(f[11+j], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		v[j] = float64(n) / userHZ
	}
	return v[0] + v[1], v[2] + v[3], nil
}

// ChildPIDs lists the live children of pid (every thread's).
func ChildPIDs(pid int) []int {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// TreeCPU is the CPU time, in seconds, of pid and all its descendants,
// live or already reaped. A child reaped between the reads is counted in
// neither or twice, so callers read it when no child is exiting.
func TreeCPU(pid int) (float64, error) {
	self, reaped, err := cpuTimes(pid)
	if err != nil {
		return 0, err
	}
	total := self + reaped
	for _, c := range ChildPIDs(pid) {
		if t, err := TreeCPU(c); err == nil {
			total += t
		}
	}
	return total, nil
}

// StatusKiB reads a "Key:   N kB" line of /proc/PID/status or smaps_rollup.
func StatusKiB(path, key string) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		n, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %s: %w", path, key, err)
		}
		return n, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no %s line", path, key)
}

// RSSKiB is a process's resident set size (VmRSS) in KiB.
func RSSKiB(pid int) (float64, error) {
	return StatusKiB(fmt.Sprintf("/proc/%d/status", pid), "VmRSS")
}

// TreePSSKiB is the proportional set size of pid and its descendants in
// KiB: pages shared between them (a forking server's) are counted once in
// all, not once per process as VmRSS would.
func TreePSSKiB(pid int) (float64, error) {
	total, err := StatusKiB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss")
	if err != nil {
		return 0, err
	}
	for _, c := range ChildPIDs(pid) {
		if v, err := TreePSSKiB(c); err == nil {
			total += v
		}
	}
	return total, nil
}
