package report

import "testing"

func TestRate(t *testing.T) {
	for r, want := range map[float64]string{0: "0", 999.4: "999", 999.5: "1,000", 1234567.8: "1,234,568", 100000: "100,000"} {
		if got := Rate(r); got != want {
			t.Errorf("Rate(%v) = %q, want %q", r, got, want)
		}
	}
}
