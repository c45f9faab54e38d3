package main

import (
	"bufio"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// memoryWatermark resolves the memory alarm's watermark: an absolute
// --memory-high-watermark-bytes if given; else 90% of GOMEMLIMIT when the
// runtime has one (the operator has said what the process may use); else
// the --memory-high-watermark share of the machine's memory, or of the
// cgroup's limit when that is lower. Zero when none can be told.
func memoryWatermark(share float64, bytes int64) int64 {
	if bytes > 0 {
		return bytes
	}
	if share <= 0 {
		return 0
	}
	if limit := debug.SetMemoryLimit(-1); limit != math.MaxInt64 {
		return limit / 10 * 9
	}
	total := machineMemory()
	return int64(share * float64(total))
}

// machineMemory is MemTotal from /proc/meminfo, or the cgroup v2 memory
// limit when that is lower; 0 when neither can be read.
func machineMemory() int64 {
	var total int64
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				total = kb << 10
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if lim, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && (total == 0 || lim < total) {
			total = lim
		}
	}
	return total
}
