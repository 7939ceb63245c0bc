package backend

import (
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devicegate/devicegate/api/internal/config"
	"github.com/devicegate/devicegate/api/internal/store/bolt"
	"github.com/devicegate/devicegate/api/internal/store/memory"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestSecondDemoInOneFolder: the bolt file is locked by the first
// devicegate; the second is told what to do about it.
func TestSecondDemoInOneFolder(t *testing.T) {
	cfg := &config.Config{Store: "bolt", BoltPath: filepath.Join(t.TempDir(), "devicegate.db")}
	first, err := Open(cfg, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, ok := first.(*bolt.Store); !ok {
		t.Errorf("bolt opened a %T", first)
	}
	_, err = Open(cfg, discard)
	if err == nil {
		t.Fatal("a second store opened the locked file")
	}
	for _, want := range []string{"locked by another devicegate process", "Stop it", "DEVICEGATE_STORE=memory", "another folder"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q: %v", want, err)
		}
	}
}

// TestOpenChoosesTheNamedStore: memory is the memory store; a name no
// backend has is refused.
func TestOpenChoosesTheNamedStore(t *testing.T) {
	st, err := Open(&config.Config{Store: "memory"}, discard)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, ok := st.(*memory.Store); !ok {
		t.Errorf("memory opened a %T", st)
	}
	if _, err := Open(&config.Config{Store: "floppy"}, discard); err == nil || !strings.Contains(err.Error(), `"floppy"`) {
		t.Errorf("unknown store: %v", err)
	}
}
