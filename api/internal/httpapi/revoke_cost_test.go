package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/ratelimit"
	"github.com/devicegate/devicegate/api/internal/store/storetest"
)

// TestCosmosCostPerFlowAndRevoke measures on Cosmos DB what one whole
// sign-in (authorize, confirm, callback, poll) costs, and one revocation:
// what a refresh without rotation costs (the refresh rate counts — from
// IPv4 one patch for the address and its /24 together, and one per
// client — and one binding read) plus the binding's delete; no query.
func TestCosmosCostPerFlowAndRevoke(t *testing.T) {
	c := storetest.NewClock()
	st := openCosmos(t, c)
	h := newHarness(t, withBackend(st, c), withRefreshLimits(ratelimit.Rule{Limit: 30, Window: 10 * time.Minute}, ratelimit.Rule{Limit: 600, Window: 10 * time.Minute}))
	h.signIn("tv") // the first flow of a window creates the rate counters
	st.ResetStats()
	rt := h.signIn("tv")["refresh_token"].(string)
	f := st.Stats()
	t.Logf("Cosmos cost of one sign-in flow: %s", costLine(f))
	if f.Queries != 0 || f.PointReads != 6 || f.Creates != 2 || f.Replaces != 4 || f.Patches != 0 || f.Upserts != 1 || f.Deletes != 0 {
		t.Errorf("sign-in cost %+v", f)
	}
	h.revoke("tv", "RT-unknown") // creates the two refresh counters of the window
	st.ResetStats()
	if res := h.revoke("tv", rt); res.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", res.StatusCode, res.body)
	}
	s := st.Stats()
	t.Logf("Cosmos cost of one revocation: %s", costLine(s))
	if s.Queries != 0 || s.PointReads != 1 || s.Creates != 0 || s.Replaces != 0 || s.Patches != 2 || s.Upserts != 0 || s.Deletes != 1 {
		t.Errorf("revocation cost %+v", s)
	}
}
