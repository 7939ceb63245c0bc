package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/devicegate/devicegate/api/internal/config"
	"github.com/devicegate/devicegate/api/internal/deviceflow"
	"github.com/devicegate/devicegate/api/internal/store/backend"
)

// TestDevicesCommand: "devicegate devices" reads the server's own
// settings, key and store (a bbolt file with its key file; a Cosmos DB
// container): it lists the two devices a server bound, "disconnect ID"
// removes one, and afterwards — in the server's wiring again — that one's
// refresh token is unbound while the other's still refreshes. Nothing
// printed is a token.
func TestDevicesCommand(t *testing.T) {
	t.Run("bolt", func(t *testing.T) {
		testDevicesCommand(t, map[string]string{"DEVICEGATE_STORE": "bolt", "DEVICEGATE_BOLT_PATH": filepath.Join(t.TempDir(), "dg.db")})
	})
	t.Run("cosmos", func(t *testing.T) {
		cs := os.Getenv("DEVICEGATE_TEST_COSMOS")
		if cs == "" {
			if os.Getenv("CI") != "" {
				t.Fatal("DEVICEGATE_TEST_COSMOS is unset under CI")
			}
			t.Skip("DEVICEGATE_TEST_COSMOS unset (scripts/cosmos-server.sh start)")
		}
		key := make([]byte, 32)
		rand.Read(key)
		testDevicesCommand(t, map[string]string{"DEVICEGATE_STORE": "cosmos", "DEVICEGATE_COSMOS_CONNECTION_STRING": cs,
			"DEVICEGATE_COSMOS_DATABASE": "devices-cmd", "DEVICEGATE_COSMOS_CONTAINER": "c" + strings.ToLower(rand.Text()[:10]),
			"DEVICEGATE_COSMOS_CREATE": "true", "DEVICEGATE_SECRET_KEY": base64.StdEncoding.EncodeToString(key)})
	})
}

func testDevicesCommand(t *testing.T, storeEnv map[string]string) {
	env := map[string]string{
		"DEVICEGATE_UPSTREAM_CLIENT_ID": "sp-1", "DEVICEGATE_UPSTREAM_CLIENT_SECRET": "sp-secret",
		"DEVICEGATE_CLIENTS": `[{"client_id":"tv","name":"Living-room TV"},{"client_id":"radio","name":"Kitchen radio"}]`,
	}
	maps.Copy(env, storeEnv)
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	cfg, err := config.Load(envMap(env), false)
	if err != nil {
		t.Fatal(err)
	}
	// server opens the store and service as build does and runs fn.
	server := func(fn func(*deviceflow.Service)) {
		t.Helper()
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		st, err := backend.Open(cfg, logger)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		key, err := secretKey(cfg, logger)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := service(cfg, st, key, 0)
		if err != nil {
			t.Fatal(err)
		}
		fn(svc)
	}
	const up = "https://accounts.spotify.com/api/token sp-1"
	tvToken, radioToken := "RT-tv-"+rand.Text(), "RT-radio-"+rand.Text()
	server(func(svc *deviceflow.Service) {
		ctx := context.Background()
		if err := svc.BindRefresh(ctx, tvToken, "tv", up, []string{"streaming"}, ""); err != nil {
			t.Fatal(err)
		}
		if err := svc.BindRefresh(ctx, radioToken, "radio", up, []string{"streaming"}, ""); err != nil {
			t.Fatal(err)
		}
	})

	var out, errs bytes.Buffer
	if err := run(context.Background(), []string{"devices", "-h"}, environ, &errs); err != nil {
		t.Fatalf("devices -h through run: %v", err)
	}
	if err := devices(context.Background(), nil, environ, &out, &errs); err != nil {
		t.Fatalf("devices: %v\n%s", err, errs.String())
	}
	rows := regexp.MustCompile(`(?m)^([0-9a-f]{12})\s+(.*)$`).FindAllStringSubmatch(out.String(), -1)
	if len(rows) != 2 || !strings.Contains(out.String(), "Living-room TV (tv)") || !strings.Contains(out.String(), "accounts.spotify.com") {
		t.Fatalf("list:\n%s", out.String())
	}
	// Both bound under the current key: the census says the previous key
	// (none is set here) could go without signing anyone out.
	if !strings.Contains(out.String(), "Every device is bound under the current key") || !regexp.MustCompile(`(?m)\bcurrent$`).MatchString(out.String()) {
		t.Errorf("list does not say which key the devices depend on:\n%s", out.String())
	}
	if strings.Contains(out.String(), tvToken) || strings.Contains(out.String(), radioToken) {
		t.Fatal("the list shows a token")
	}
	tvID := rows[0][1]
	if !strings.Contains(rows[0][2], "(tv)") {
		tvID = rows[1][1]
	}
	out.Reset()
	if err := devices(context.Background(), []string{"disconnect", tvID}, environ, &out, &errs); err != nil {
		t.Fatalf("disconnect: %v", err)
	}
	server(func(svc *deviceflow.Service) {
		ctx := context.Background()
		if _, err := svc.CheckRefresh(ctx, tvToken, "tv", up); !errors.Is(err, deviceflow.ErrRefreshUnbound) {
			t.Errorf("the disconnected device's token: %v, want ErrRefreshUnbound", err)
		}
		g, err := svc.CheckRefresh(ctx, radioToken, "radio", up)
		if err != nil {
			t.Fatalf("the other device's token: %v", err)
		}
		if err := svc.Refreshed(ctx, g, "", []string{"streaming"}); err != nil {
			t.Fatal(err)
		}
	})
	// The memory store lives in the server: the command refuses it.
	mem := append(environ[:len(environ):len(environ)], "DEVICEGATE_STORE=memory")
	if err := devices(context.Background(), nil, mem, &out, &errs); err == nil || !strings.Contains(err.Error(), "memory") {
		t.Errorf("devices on the memory store: %v", err)
	}
}

// TestDevicesCommandDuringRotation: while keys rotate, the command is keyed
// as the server is — the previous key included — so a device bound under
// the previous key is listed as such, and the census counts it (rather
// than calling its key unknown).
func TestDevicesCommandDuringRotation(t *testing.T) {
	oldKey, newKey := make([]byte, 32), make([]byte, 32)
	rand.Read(oldKey)
	rand.Read(newKey)
	env := map[string]string{
		"DEVICEGATE_UPSTREAM_CLIENT_ID": "sp-1", "DEVICEGATE_UPSTREAM_CLIENT_SECRET": "sp-secret",
		"DEVICEGATE_CLIENTS": `[{"client_id":"tv","name":"Living-room TV"}]`,
		"DEVICEGATE_STORE":   "bolt", "DEVICEGATE_BOLT_PATH": filepath.Join(t.TempDir(), "dg.db"),
		"DEVICEGATE_SECRET_KEY": base64.StdEncoding.EncodeToString(oldKey),
	}
	cfg, err := config.Load(envMap(env), false)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := backend.Open(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service(cfg, st, oldKey, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.BindRefresh(context.Background(), "RT-tv-"+rand.Text(), "tv", "https://accounts.spotify.com/api/token sp-1", []string{"streaming"}, ""); err != nil {
		t.Fatal(err)
	}
	st.Close()

	env["DEVICEGATE_SECRET_KEY"] = base64.StdEncoding.EncodeToString(newKey)
	env["DEVICEGATE_SECRET_KEY_PREVIOUS"] = base64.StdEncoding.EncodeToString(oldKey)
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	var out, errs bytes.Buffer
	if err := devices(context.Background(), nil, environ, &out, &errs); err != nil {
		t.Fatalf("devices: %v\n%s", err, errs.String())
	}
	if !regexp.MustCompile(`(?m)^[0-9a-f]{12}\s.*\bprevious$`).MatchString(out.String()) {
		t.Errorf("the device bound under the previous key is not listed as such:\n%s", out.String())
	}
}
