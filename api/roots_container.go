//go:build container

package main

// The container image is built from an empty base (no /etc/ssl), so the
// binary carries Mozilla's root certificates for its HTTPS calls to the
// provider and to Cosmos DB. The package only takes effect when the system
// has no roots of its own. scripts/image.sh builds with -tags container.
import _ "golang.org/x/crypto/x509roots/fallback"
