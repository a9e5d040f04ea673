package testsvc

import (
	"os/exec"
	"testing"
)

// Tmpfs mounts a fresh tmpfs of the given size (mount(8) syntax, for
// example "8m") on a new temporary folder and returns its path; it is
// unmounted when the test ends. Tests use it for a real, small filesystem
// (disk-full behaviour). It needs root: without root, or when the mount
// fails, the test fails under VIGIL_REQUIRE_SERVICES=1 and is skipped
// otherwise.
func Tmpfs(tb testing.TB, size string) string {
	tb.Helper()
	Root(tb)
	mount := Tool(tb, "mount")
	dir := tb.TempDir()
	if out, err := exec.Command(mount, "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		Missing(tb, "cannot mount a tmpfs ("+err.Error()+": "+string(out)+")")
		return ""
	}
	tb.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			tb.Logf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}
