package soak

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Usage is what a process holds at one moment.
type Usage struct {
	FDs        int   // entries in /proc/PID/fd
	RSS        int64 // resident set, bytes (VmRSS)
	Goroutines int   // go_goroutines from its /metrics
}

func (u Usage) String() string {
	return fmt.Sprintf("%d fds, %d goroutines, RSS %s", u.FDs, u.Goroutines, MiB(u.RSS))
}

// Max is the larger of u and v in each field.
func (u Usage) Max(v Usage) Usage {
	return Usage{FDs: max(u.FDs, v.FDs), RSS: max(u.RSS, v.RSS), Goroutines: max(u.Goroutines, v.Goroutines)}
}

// Tolerance is how far above a baseline a process may stay once the load
// is over.
type Tolerance struct {
	FDs        int
	Goroutines int
	RSS        int64
}

// Over says which fields of u exceed base by more than tol, or returns ""
// if none does.
func (u Usage) Over(base Usage, tol Tolerance) string {
	var over []string
	if u.FDs > base.FDs+tol.FDs {
		over = append(over, fmt.Sprintf("%d fds, baseline %d + %d", u.FDs, base.FDs, tol.FDs))
	}
	if u.Goroutines > base.Goroutines+tol.Goroutines {
		over = append(over, fmt.Sprintf("%d goroutines, baseline %d + %d", u.Goroutines, base.Goroutines, tol.Goroutines))
	}
	if u.RSS > base.RSS+tol.RSS {
		over = append(over, fmt.Sprintf("RSS %s, baseline %s + %s", MiB(u.RSS), MiB(base.RSS), MiB(tol.RSS)))
	}
	return strings.Join(over, "; ")
}

// MiB formats a byte count in MiB with one decimal.
func MiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// Sample reads pid's open fds and RSS from /proc and its goroutine count
// from the Prometheus text at metricsURL (go_goroutines).
func Sample(ctx context.Context, pid int, metricsURL string) (Usage, error) {
	var u Usage
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return u, fmt.Errorf("counting fds: %w", err)
	}
	u.FDs = len(fds)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, fmt.Errorf("reading RSS: %w", err)
	}
	if u.RSS, err = vmRSS(status); err != nil {
		return u, err
	}
	if u.Goroutines, err = goroutines(ctx, metricsURL); err != nil {
		return u, err
	}
	return u, nil
}

// vmRSS finds "VmRSS: N kB" in the text of /proc/PID/status.
func vmRSS(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "VmRSS:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %w", f[1], err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS line in /proc/PID/status")
}

// scrape is an HTTP client that keeps no connection open between scrapes,
// so that sampling does not add to the fds it counts.
var scrape = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func goroutines(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := scrape.Do(req)
	if err != nil {
		return 0, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("scraping %s: %s", url, resp.Status)
	}
	return parseGoroutines(resp.Body)
}

func parseGoroutines(r io.Reader) (int, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		return 0, fmt.Errorf("parsing metrics: %w", err)
	}
	mf := mfs["go_goroutines"]
	if mf == nil || len(mf.GetMetric()) != 1 || mf.GetMetric()[0].GetGauge() == nil {
		return 0, fmt.Errorf("metrics have no go_goroutines gauge")
	}
	return int(mf.GetMetric()[0].GetGauge().GetValue()), nil
}
