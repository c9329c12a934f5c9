package report

import "testing"

func TestStatMedian(t *testing.T) {
	for _, tc := range []struct {
		in             []float64
		med, min, max_ float64
	}{
		{[]float64{3}, 3, 3, 3},
		{[]float64{5, 1, 3}, 3, 1, 5},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4},
	} {
		var s *Stat
		for i, v := range tc.in {
			s = s.Add(i, v)
		}
		s.Summarize()
		if s.Median != tc.med || s.Min != tc.min || s.Max != tc.max_ {
			t.Errorf("%v: median %v min %v max %v, want %v %v %v", tc.in, s.Median, s.Min, s.Max, tc.med, tc.min, tc.max_)
		}
	}
}
