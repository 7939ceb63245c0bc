//go:build tools

// Package tools pins the development tools devicegate's CI runs, in a
// module of their own so the product's go.mod stays lean.
package tools

import (
	_ "github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod"
	_ "github.com/codesenberg/bombardier"
	_ "github.com/google/go-containerregistry/cmd/crane"
	_ "github.com/rhysd/actionlint/cmd/actionlint"
)
