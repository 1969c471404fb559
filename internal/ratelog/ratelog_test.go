package ratelog

import (
	"testing"
	"time"
)

func TestLimiterAllowsOneLinePerInterval(t *testing.T) {
	l := &Limiter{Interval: time.Hour}
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("the first line was held back")
	}
	for range 5 {
		if ok, _ := l.Allow("a"); ok {
			t.Fatal("a repeat within the interval was allowed")
		}
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Error("another key was held back")
	}
	l.Interval = time.Nanosecond
	time.Sleep(time.Millisecond)
	if ok, n := l.Allow("a"); !ok || n != 5 {
		t.Errorf("after the interval: allowed %v, suppressed %d; want true, 5", ok, n)
	}
}
