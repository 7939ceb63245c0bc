package e2e

import (
	"os"
	"strings"
	"syscall"
	"testing"
)

// imageBinary is the key in newStack's extra settings that runs the binary
// extracted from the container image, in container mode.
const imageBinary = "image binary"

// containerUser is the image's unprivileged user (tools/imagebuild), used
// when the tests run as root, so the binary runs as the container would.
func containerUser() *syscall.Credential {
	if os.Getuid() != 0 {
		return nil
	}
	return &syscall.Credential{Uid: 65532, Gid: 65532}
}

// The way out: the binary of the container image (scripts/image.sh, built
// without Docker and extracted by scripts/e2e.sh) as Azure Container Apps
// runs it: listening on the platform's PORT, as the image's unprivileged
// user, serving its embedded pages and the API, on the Cosmos store. A whole
// flow with the zitadel provider, a real browser and golang.org/x/oauth2.
func TestHappyPathContainerImage(t *testing.T) {
	t.Parallel()
	bin, cs := os.Getenv("DEVICEGATE_E2E_IMAGE_BINARY"), os.Getenv("DEVICEGATE_TEST_COSMOS")
	if bin == "" || cs == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("DEVICEGATE_E2E_IMAGE_BINARY or DEVICEGATE_TEST_COSMOS is unset under CI")
		}
		t.Skip("scripts/e2e.sh builds the image and starts the Cosmos test server")
	}
	settings := cosmosSettings(cs, "image-")
	settings[imageBinary] = bin
	settings["DEVICEGATE_LOG_FORMAT"] = "json"
	s := newStack(t, settings)
	// The pages come from the binary itself (there is no Static Web App):
	// the phone opens /device from it.
	signIn(t, s, "image-phone")
	logs := s.logs.String()
	if !strings.Contains(logs, `"store":"cosmos"`) || !strings.Contains(logs, `"listen":"[::]:`) {
		t.Errorf("the image's binary did not run on cosmos, listening on every interface from PORT:\n%s", logs)
	}
}
