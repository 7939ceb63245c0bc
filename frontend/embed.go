// Package frontend holds devicegate's static pages. Azure Static Web Apps
// serves this folder as is; the local binary embeds it, so one set of files
// serves both. Paths in the pages are absolute ("/api/verify",
// "/assets/app.css"), never tied to a host.
package frontend

import "embed"

// Files is the site, with index.html at its root. The code-entry page
// (/device) is not here: the handler renders it in the person's language
// (package pages), and Static Web Apps rewrites /device to it.
//
//go:embed index.html 404.html assets
var Files embed.FS
