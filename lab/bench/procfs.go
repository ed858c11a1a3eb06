package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat
// (`getconf CLK_TCK`): 100 on every Linux architecture Go supports.
const clockTicks = 100

// ParseStatCPU returns utime+stime of a /proc/PID/stat line (proc(5):
// fields 14 and 15, in clock ticks). The command name, field 2, is in
// parentheses and may hold spaces and parentheses itself, so fields are
// counted from its last ')'.
func ParseStatCPU(stat []byte) (time.Duration, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errors.New("bench: /proc stat: no ')' closing the command name")
	}
	// After ")": field 3 (state) is the first.
	f := bytes.Fields(stat[end+1:])
	const utime, stime = 14 - 3, 15 - 3
	if len(f) <= stime {
		return 0, fmt.Errorf("bench: /proc stat: %d fields after the command name, want at least %d", len(f), stime+1)
	}
	var ticks uint64
	for _, i := range []int{utime, stime} {
		v, err := strconv.ParseUint(string(f[i]), 10, 63)
		if err != nil {
			return 0, fmt.Errorf("bench: /proc stat: field %d: %w", i+3, err)
		}
		ticks += v
	}
	if ticks > uint64(1<<63-1)/uint64(time.Second) {
		return 0, fmt.Errorf("bench: /proc stat: %d ticks is out of range", ticks)
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// CPUTime returns the CPU time (user + system) used so far by the threads
// of process pid, like the TIME column of `ps -o time`.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	return ParseStatCPU(b)
}

// ParseStatusRSS returns VmRSS of a /proc/PID/status file in bytes.
func ParseStatusRSS(status []byte) (int64, error) {
	for line := range bytes.Lines(status) {
		v, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		num, unit, _ := bytes.Cut(bytes.TrimSpace(v), []byte(" "))
		if string(bytes.TrimSpace(unit)) != "kB" {
			return 0, fmt.Errorf("bench: /proc status: VmRSS unit %q, want kB", unit)
		}
		kb, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil || kb < 0 || kb > 1<<53 {
			return 0, fmt.Errorf("bench: /proc status: VmRSS %q is not a size in kB", num)
		}
		return kb << 10, nil
	}
	return 0, errors.New("bench: /proc status: no VmRSS line")
}

// RSS returns the resident set size of process pid in bytes (VmRSS, as
// the RSS column of `ps`).
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	return ParseStatusRSS(b)
}

// FDCount returns how many file descriptors process pid has open
// (`ls /proc/PID/fd | wc -l`).
func FDCount(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	return len(ents), nil
}

// Children returns the PIDs whose parent is pid (field 4 of /proc/N/stat).
func Children(pid int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	var kids []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		if ppid, err := parseStatPPID(b); err == nil && ppid == pid {
			kids = append(kids, n)
		}
	}
	return kids, nil
}

func parseStatPPID(stat []byte) (int, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errors.New("bench: /proc stat: no ')'")
	}
	f := bytes.Fields(stat[end+1:])
	if len(f) < 2 {
		return 0, errors.New("bench: /proc stat: too short")
	}
	return strconv.Atoi(string(f[1]))
}
