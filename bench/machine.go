package bench

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// Machine describes where the benchmark ran.
type Machine struct {
	CPUs        int     `json:"cpus"`
	CPUModel    string  `json:"cpu_model,omitempty"`
	MemoryBytes int64   `json:"memory_bytes,omitempty"`
	GoVersion   string  `json:"go_version"`
	GOOS        string  `json:"goos"`
	GOARCH      string  `json:"goarch"`
	GOMAXPROCS  int     `json:"gomaxprocs"`
	Kernel      string  `json:"kernel,omitempty"`
	KernelBuild string  `json:"kernel_build,omitempty"`
	Hostname    string  `json:"hostname,omitempty"`
	LoadAvg     string  `json:"loadavg_at_start,omitempty"`
	LoadAvgEnd  string  `json:"loadavg_at_end,omitempty"`
	DataDir     string  `json:"data_dir"`
	DataDirFS   string  `json:"data_dir_fs,omitempty"`
	DataDirFree float64 `json:"data_dir_free_gib,omitempty"`
}

// MachineFacts collects the facts; dataDir is where servers keep their
// data and audit logs (the disk that fsyncs).
func MachineFacts(dataDir string) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
		GOMAXPROCS: runtime.GOMAXPROCS(0), DataDir: dataDir}
	m.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "MemTotal:") {
				f := strings.Fields(line)
				if len(f) >= 2 {
					kb, _ := strconv.ParseInt(f[1], 10, 64)
					m.MemoryBytes = kb << 10
				}
			}
		}
	}
	m.LoadAvg = loadAvg()
	m.Kernel, m.KernelBuild = uname()
	m.DataDirFS, m.DataDirFree = fsInfo(dataDir)
	return m
}

// loadAvg returns the 1, 5 and 15 minute load averages ("" if unknown).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// fsInfo names the filesystem holding dir (from /proc/self/mounts, the
// longest mount point that is a prefix of dir) and its free space.
func fsInfo(dir string) (string, float64) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", 0
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	fsType, best := "", -1
	if b, err := os.ReadFile("/proc/self/mounts"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 3 {
				continue
			}
			mp := f[1]
			if (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/") || mp == "/") && len(mp) > best {
				fsType, best = f[2]+" ("+f[0]+")", len(mp)
			}
		}
	}
	var st syscall.Statfs_t
	free := 0.0
	if syscall.Statfs(abs, &st) == nil {
		free = float64(st.Bavail) * float64(st.Bsize) / (1 << 30)
	}
	return fsType, free
}
