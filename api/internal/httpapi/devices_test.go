package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/admin"
	"github.com/devicegate/devicegate/api/internal/store"
)

// devicesCmd runs the operator's "devicegate devices" command against the
// harness's service and store and returns what it printed.
func (h *harness) devicesCmd(args ...string) (string, error) {
	var out bytes.Buffer
	err := admin.Devices(context.Background(), args, admin.Options{
		Service: h.svc, Out: &out,
		ClientName: func(id string) string {
			c, _ := findClient(id)
			if c == nil {
				return ""
			}
			return c.Name
		},
	})
	return out.String(), err
}

var deviceRow = regexp.MustCompile(`(?m)^([0-9a-f]{12})\s+(.*)$`)

// TestDevicesListAndDisconnect: the operator lists two signed-in devices
// (name, provider, scopes, times) on every store, disconnects one by its
// short id; that one's next refresh is invalid_grant without a provider
// call, the other keeps refreshing. The list shows no token and no
// binding key or token hash.
func TestDevicesListAndDisconnect(t *testing.T) {
	for name, backend := range storeBackends() {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, backend(t))
			signedIn := h.clock.Now()
			tv := h.signIn("tv")
			h.clock.Advance(time.Hour)
			radio := h.signIn("radio")
			out, err := h.devicesCmd()
			if err != nil {
				t.Fatal(err)
			}
			rows := deviceRow.FindAllStringSubmatch(out, -1)
			if len(rows) != 2 {
				t.Fatalf("%d devices listed, want 2:\n%s", len(rows), out)
			}
			// Oldest sign-in first.
			if !strings.Contains(rows[0][2], "Living-room TV (tv)") || !strings.Contains(rows[1][2], "Kitchen radio (radio)") {
				t.Errorf("rows:\n%s", out)
			}
			wantIn := []string{"127.0.0.1", "streaming", signedIn.UTC().Format("2006-01-02 15:04"), "not yet"}
			for _, w := range wantIn {
				if !strings.Contains(rows[0][2], w) {
					t.Errorf("the tv row lacks %q:\n%s", w, out)
				}
			}
			for _, secret := range []string{tv["refresh_token"].(string), radio["refresh_token"].(string), tv["access_token"].(string)} {
				if strings.Contains(out, secret) {
					t.Errorf("the list shows a token")
				}
			}
			for _, d := range mustDevices(t, h) {
				if strings.Contains(out, d) {
					t.Errorf("the list shows a binding key")
				}
			}

			before := h.provider.exchangeCount()
			msg, err := h.devicesCmd("disconnect", rows[0][1])
			if err != nil || !strings.Contains(msg, "Living-room TV") {
				t.Fatalf("disconnect: %v %s", err, msg)
			}
			wantOAuthError(t, h.refresh("tv", tv["refresh_token"].(string)), http.StatusBadRequest, "invalid_grant")
			if h.provider.exchangeCount() != before {
				t.Error("the disconnected device's refresh reached the provider")
			}
			for range 2 {
				if res := h.refresh("radio", radio["refresh_token"].(string)); res.StatusCode != http.StatusOK {
					t.Fatalf("the other device's refresh: %d %s", res.StatusCode, res.body)
				}
			}
			out, _ = h.devicesCmd()
			if rows := deviceRow.FindAllStringSubmatch(out, -1); len(rows) != 1 || !strings.Contains(rows[0][2], "Kitchen radio") {
				t.Errorf("after disconnecting one:\n%s", out)
			}
			if _, err := h.devicesCmd("disconnect", rows[0][1]); err == nil {
				t.Error("disconnecting a device already gone succeeded")
			}
			if _, err := h.devicesCmd("disconnect", "zz"); err == nil {
				t.Error("disconnecting a malformed id succeeded")
			}
		})
	}
}

// TestDevicesRefreshedRecorded: a refresh a day after the last record
// writes the binding's RefreshedAt; one within the day writes nothing.
func TestDevicesRefreshedRecorded(t *testing.T) {
	h := newHarness(t)
	rt := h.signIn("tv")["refresh_token"].(string)
	h.clock.Advance(25 * time.Hour)
	if res := h.refresh("tv", rt); res.StatusCode != http.StatusOK {
		t.Fatalf("refresh: %d %s", res.StatusCode, res.body)
	}
	out, _ := h.devicesCmd()
	if !strings.Contains(out, h.clock.Now().UTC().Format("2006-01-02 15:04")) || strings.Contains(out, "not yet") {
		t.Errorf("last refreshed not recorded:\n%s", out)
	}
}

// mustDevices returns the binding keys in the store, to check the list
// never shows one.
func mustDevices(t *testing.T, h *harness) []string {
	t.Helper()
	var ids []string
	if err := h.store.EachBinding(context.Background(), func(b *store.Binding) error {
		ids = append(ids, b.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}
