package store

import (
	"reflect"
	"testing"
	"time"
)

// TestPacingOnlyKnowsEveryField sets each field of Record alone and checks
// that PacingOnly calls only LastPoll, Interval and Version pacing: a new
// field without a test value here fails, so it is compared (and durable)
// unless someone decides otherwise.
func TestPacingOnlyKnowsEveryField(t *testing.T) {
	pacing := map[string]bool{"LastPoll": true, "Interval": true, "Version": true}
	rt := reflect.TypeOf(Record{})
	for i := range rt.NumField() {
		f := rt.Field(i)
		t.Run(f.Name, func(t *testing.T) {
			cur, next := &Record{}, &Record{}
			v := reflect.ValueOf(next).Elem().Field(i)
			switch {
			case f.Type == reflect.TypeOf(time.Time{}):
				v.Set(reflect.ValueOf(time.Unix(1, 0)))
			case v.Kind() == reflect.String:
				v.SetString("x")
			case v.Kind() == reflect.Int:
				v.SetInt(7)
			case v.Kind() == reflect.Bool:
				v.SetBool(true)
			case f.Type == reflect.TypeOf([]string(nil)):
				v.Set(reflect.ValueOf([]string{"x"}))
			case f.Type == reflect.TypeOf([]byte(nil)):
				v.Set(reflect.ValueOf([]byte("x")))
			default:
				t.Fatalf("no test value for a field of type %s: extend this test and PacingOnly", f.Type)
			}
			if got, want := PacingOnly(cur, next), pacing[f.Name]; got != want {
				t.Errorf("PacingOnly with only %s set = %v, want %v", f.Name, got, want)
			}
		})
	}
}
