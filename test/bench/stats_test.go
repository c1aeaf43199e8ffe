package main

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	for _, tc := range []struct {
		name          string
		in            []time.Duration
		med, min, max time.Duration
	}{
		{"empty", nil, 0, 0, 0},
		{"one", ms(5), 5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond},
		{"odd, unsorted", ms(9, 1, 5, 7, 3), 5 * time.Millisecond, time.Millisecond, 9 * time.Millisecond},
		{"even takes the mean of the middle two", ms(4, 1, 10, 2), 3 * time.Millisecond, time.Millisecond, 10 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]time.Duration(nil), tc.in...)
			got := summarize(tc.in)
			if got.Median != tc.med || got.Min != tc.min || got.Max != tc.max {
				t.Errorf("summarize(%v) = %+v, want median %v min %v max %v", tc.in, got, tc.med, tc.min, tc.max)
			}
			for i := range in {
				if in[i] != tc.in[i] {
					t.Fatalf("summarize reordered its argument: %v", tc.in)
				}
			}
		})
	}
}

func TestRatio(t *testing.T) {
	if got := ratio(time.Second, 4*time.Second); got != 0.25 {
		t.Errorf("ratio = %v, want 0.25", got)
	}
	if got := ratio(time.Second, 0); got != 0 {
		t.Errorf("ratio by zero = %v, want 0", got)
	}
}
