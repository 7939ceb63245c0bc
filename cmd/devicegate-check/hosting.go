package main

import (
	"cmp"
	"net"
	"net/url"
	"strings"
)

// hosting is where the checked deployment runs: each diagnosis names what
// to look at there. The names are infra/main.bicep's hosting parameter's,
// docs/DEPLOY.md has a section per hosting; local is devicegate run by
// hand (the binary, -demo, a container on this machine).
type hosting string

const (
	staticWebApp hosting = "staticWebApp" // Azure Static Web Apps, managed functions
	functionApp  hosting = "functionApp"  // Azure Functions, Flex Consumption
	containerApp hosting = "containerApp" // Azure Container Apps
	local        hosting = "local"        // on this machine
	unknown      hosting = ""             // a custom domain: every hosting is named
)

// hostings lists them as -hosting takes them.
var hostings = []hosting{staticWebApp, functionApp, containerApp, local}

// describe names a hosting for people.
func (h hosting) describe() string {
	switch h {
	case staticWebApp:
		return "Azure Static Web Apps"
	case functionApp:
		return "a Flex Consumption function app"
	case containerApp:
		return "Azure Container Apps"
	case local:
		return "devicegate on this machine"
	}
	return "unknown (a custom domain); -hosting names it"
}

// detectHosting tells the hosting from the address's default host name:
// each Azure service gives its sites one under its own domain
// (<name>.azurestaticapps.net, <name>.azurewebsites.net, which Flex
// Consumption apps get as well, <app>.<environment>.<region>.
// azurecontainerapps.io); a loopback address is this machine. A custom
// domain says nothing, and -hosting tells.
func detectHosting(u *url.URL) hosting {
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	switch {
	case strings.HasSuffix(host, ".azurestaticapps.net"):
		return staticWebApp
	case strings.HasSuffix(host, ".azurewebsites.net"):
		return functionApp
	case strings.HasSuffix(host, ".azurecontainerapps.io"):
		return containerApp
	case host == "localhost":
		return local
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return local
	}
	return unknown
}

// parseHosting reads -hosting: auto, or one of hostings.
func parseHosting(s string) (hosting, bool) {
	for _, h := range hostings {
		if strings.EqualFold(s, string(h)) {
			return h, true
		}
	}
	return unknown, strings.EqualFold(s, "auto")
}

// per is one diagnosis as each hosting words it. Empty fields take the
// one before (functionApp takes staticWebApp's, containerApp
// functionApp's, local containerApp's).
type per struct {
	swa, function, container, local string
}

// say is p for hosting h; for an unknown hosting, every distinct wording,
// each with the hostings it is for.
func (h hosting) say(p per) string {
	texts := map[hosting]string{staticWebApp: p.swa}
	texts[functionApp] = cmp.Or(p.function, texts[staticWebApp])
	texts[containerApp] = cmp.Or(p.container, texts[functionApp])
	texts[local] = cmp.Or(p.local, texts[containerApp])
	if h != unknown {
		return texts[h]
	}
	var order []string
	who := map[string][]string{}
	for _, x := range hostings {
		t := texts[x]
		if who[t] == nil {
			order = append(order, t)
		}
		who[t] = append(who[t], string(x))
	}
	if len(order) == 1 {
		return order[0]
	}
	parts := make([]string, len(order))
	for i, t := range order {
		parts[i] = strings.Join(who[t], "/") + ": " + t
	}
	return strings.Join(parts, " — ")
}
