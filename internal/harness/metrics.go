package harness

import dto "github.com/prometheus/client_model/go"

// MetricValue returns the value of the sample of fam whose labels include
// want (name, value pairs): a counter's or gauge's value, a histogram's
// sample count. ok is false when fam is nil or no sample matches.
func MetricValue(fam *dto.MetricFamily, want ...string) (v float64, ok bool) {
	if fam == nil {
		return 0, false
	}
next:
	for _, m := range fam.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if have[want[i]] != want[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}
