// Package frontend holds devicegate's static pages. Azure Static Web Apps
// serves this folder as is; the local binary embeds it, so one set of files
// serves both. Paths in the pages are absolute ("/api/verify",
// "/assets/app.css"), never tied to a host.
package frontend

import "embed"

// Files is the site's assets. The pages are not here: the handler renders
// the start page, the code entry and the not-found page in the person's
// language (package pages), and Static Web Apps rewrites /, /device and
// every address that holds nothing to it (staticwebapp.config.json).
// index.html is not embedded: it exists only because the Static Web Apps
// deploy refuses a site without one, and / is rewritten past it.
//
//go:embed assets
var Files embed.FS
