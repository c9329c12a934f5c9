package measure

import (
	"os/exec"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/internal/harness"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if got := Percentile(d, 0.50); got != 51 {
		t.Errorf("p50 = %v, want 51", got)
	}
	if got := Percentile(d, 0.99); got != 100 {
		t.Errorf("p99 = %v, want 100", got)
	}
	if got := Percentile(nil, 0.99); got != 0 {
		t.Errorf("p99 of nothing = %v, want 0", got)
	}
}

// TestCPUTimesCountReapedChildren: a forking server's children's CPU is
// in its own counters once it has waited for them (socat's row relies on
// it).
func TestCPUTimesCountReapedChildren(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	// The child burns CPU for a moment; the shell waits for it, then idles.
	cmd := exec.Command(sh, "-c", `sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done'; sleep 30`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	harness.Until(t, 30*time.Second, "the reaped child's CPU in the shell's counters", func() bool {
		_, reaped, err := cpuTimes(cmd.Process.Pid)
		return err == nil && reaped > 0
	})
}
