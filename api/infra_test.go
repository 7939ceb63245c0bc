package main

// Static checks of infra/main.bicep, the GitHub workflows and docs/DEPLOY.md
// against each other and against devicegate's own configuration code. No
// Bicep compiler runs here (it comes from NuGet, which these machines do not
// reach; ci.yml's bicep job compiles and lints the template on GitHub), so
// these tests read the template as text: each names the Bicep shape it
// relies on and fails when that shape is gone, rather than pass on nothing.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/devicegate/devicegate/api/internal/config"
)

var hostings = []string{"staticWebApp", "functionApp", "containerApp"}

func readRepoFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile("../" + path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// bicepBlock returns the declaration that starts with a line beginning with
// prefix (e.g. "resource functionApp "), up to its closing brace or bracket.
// Braces inside Bicep strings ('${…}') are balanced, so counting them all
// finds the end.
func bicepBlock(t *testing.T, src, prefix string) string {
	t.Helper()
	start := -1
	for i := 0; i < len(src); {
		if strings.HasPrefix(src[i:], prefix) && (i == 0 || src[i-1] == '\n') {
			start = i
			break
		}
		j := strings.IndexByte(src[i:], '\n')
		if j < 0 {
			break
		}
		i += j + 1
	}
	if start < 0 {
		t.Fatalf("main.bicep has no declaration starting %q", prefix)
	}
	depth, opened := 0, false
	for i := start; i < len(src); i++ {
		switch src[i] {
		case '{', '[':
			depth++
			opened = true
		case '}', ']':
			depth--
		}
		if opened && depth == 0 {
			return src[start : i+1]
		}
	}
	t.Fatalf("main.bicep: %q never closes", prefix)
	return ""
}

// settingKeys returns the app-setting names written as object keys in a
// Bicep block (settings start with a capital letter; Bicep's own property
// names do not), with the literal value where the value is a plain string.
func settingKeys(block string) map[string]string {
	keys := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s*([A-Z][A-Za-z0-9_]*):\s*(.*)$`).FindAllStringSubmatch(block, -1) {
		v := strings.TrimSpace(m[2])
		if lit := regexp.MustCompile(`^'([^'$]*)'$`).FindStringSubmatch(v); lit != nil {
			keys[m[1]] = lit[1]
		} else {
			keys[m[1]] = ""
		}
	}
	return keys
}

// hostingSettings reconstructs, per hosting, the app settings (name →
// literal value or "") the template gives the running binary.
func hostingSettings(t *testing.T) map[string]map[string]string {
	t.Helper()
	src := readRepoFile(t, "infra/main.bicep")
	fixed := settingKeys(bicepBlock(t, src, "var fixedSettings = {"))
	secret := settingKeys(bicepBlock(t, src, "var secretSettings = {"))
	merge := func(maps ...map[string]string) map[string]string {
		out := map[string]string{}
		for _, m := range maps {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}

	site := bicepBlock(t, src, "resource settings ")
	if !strings.Contains(site, "union(extraSettings, fixedSettings, secretSettings, {") {
		t.Fatalf("staticWebApp settings no longer union fixedSettings and secretSettings:\n%s", site)
	}
	fn := bicepBlock(t, src, "resource functionSettings ")
	if !strings.Contains(fn, "union(extraSettings, fixedSettings, {") {
		t.Fatalf("functionApp settings no longer union fixedSettings:\n%s", fn)
	}
	if strings.Contains(fn, "secretSettings") {
		t.Errorf("functionApp settings take secretSettings, which carries the Cosmos key")
	}

	// containerApp: fixedSettings as plain env, containerOnlyEnv, and the
	// secrets by reference.
	if !strings.Contains(src, "var fixedEnv = [for k in objectKeys(fixedSettings)") ||
		!strings.Contains(src, "env: concat(fixedEnv, containerOnlyEnv, secretRefs)") {
		t.Fatal("the Container App's env is no longer fixedEnv + containerOnlyEnv + secretRefs")
	}
	container := merge(fixed)
	for _, m := range regexp.MustCompile(`name: '([A-Za-z_][A-Za-z0-9_]*)', value: (?:'([^']*)'|[^}]*)`).FindAllStringSubmatch(bicepBlock(t, src, "var containerOnlyEnv = ["), -1) {
		container[m[1]] = m[2]
	}
	for _, m := range regexp.MustCompile(`'([A-Z_]+)'`).FindAllStringSubmatch(bicepBlock(t, src, "var secretEnvNames = ["), -1) {
		container[m[1]] = ""
	}

	return map[string]map[string]string{
		"staticWebApp": merge(fixed, secret, settingKeys(site)),
		"functionApp":  merge(fixed, settingKeys(fn)),
		"containerApp": container,
	}
}

// TestBicepSettingsMakeAValidConfigPerHosting: for each hosting, the app
// settings the template writes, loaded by devicegate's own configuration
// code, are a complete production configuration on the Cosmos store. A
// setting the template forgets (or renames) for one hosting fails here, not
// on the first deploy. Values the template computes at deploy time are
// stood in for by realistic ones; literal values are taken from the
// template as written.
func TestBicepSettingsMakeAValidConfigPerHosting(t *testing.T) {
	var params struct {
		Parameters map[string]struct {
			Value json.RawMessage `json:"value"`
		} `json:"parameters"`
	}
	if err := json.Unmarshal([]byte(readRepoFile(t, "infra/main.parameters.json")), &params); err != nil {
		t.Fatal(err)
	}
	var clients string
	if err := json.Unmarshal(params.Parameters["clients"].Value, &clients); err != nil {
		t.Fatalf("main.parameters.json clients: %v", err)
	}
	computed := map[string]string{
		"DEVICEGATE_UPSTREAM":               "spotify",
		"DEVICEGATE_UPSTREAM_CLIENT_ID":     "client-id-from-the-parameters",
		"DEVICEGATE_UPSTREAM_CLIENT_SECRET": "client-secret-from-the-parameters",
		"DEVICEGATE_CLIENTS":                clients,
		"DEVICEGATE_COSMOS_DATABASE":        "devicegate",
		"DEVICEGATE_COSMOS_CONTAINER":       "records",
		"DEVICEGATE_COSMOS_ENDPOINT":        "https://devicegate-abc.documents.azure.com:443/",
		"DEVICEGATE_COSMOS_KEY":             base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 64)),
		"DEVICEGATE_SECRET_KEY":             base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)),
		"DEVICEGATE_PUBLIC_URL":             "https://devicegate-abc.example.net",
		"DEVICEGATE_LOG_LEVEL":              "info",
	}
	// What each platform sets itself.
	platform := map[string]map[string]string{
		"staticWebApp": {"FUNCTIONS_CUSTOMHANDLER_PORT": "7071"},
		"functionApp":  {"FUNCTIONS_CUSTOMHANDLER_PORT": "7071"},
		"containerApp": {},
	}
	all := hostingSettings(t)
	for _, h := range hostings {
		t.Run(h, func(t *testing.T) {
			env := map[string]string{}
			for k, lit := range all[h] {
				switch {
				case lit != "":
					env[k] = lit
				case strings.HasPrefix(k, "DEVICEGATE_"):
					v, ok := computed[k]
					if !ok {
						t.Fatalf("main.bicep sets %s for %s; give this test a realistic value for it", k, h)
					}
					env[k] = v
				default:
					env[k] = "set-by-the-template"
				}
			}
			for k, v := range platform[h] {
				env[k] = v
			}
			cfg, err := config.Load(func(k string) string { return env[k] }, false)
			if err != nil {
				t.Fatalf("the settings main.bicep writes for %s are not a valid configuration:\n%v", h, err)
			}
			if cfg.Store != "cosmos" || cfg.Cosmos.Endpoint == "" || cfg.PublicURL == "" || !cfg.TrustedProxy {
				t.Errorf("%s: store %q, endpoint %q, public URL %q, trusted proxy %v", h, cfg.Store, cfg.Cosmos.Endpoint, cfg.PublicURL, cfg.TrustedProxy)
			}
			// functionApp signs in with its managed identity: no key may
			// reach it (the account's keys are off). The others have no
			// identity and need the key.
			if wantKey := h != "functionApp"; (cfg.Cosmos.Key != "") != wantKey {
				t.Errorf("%s: Cosmos key set = %v, want %v", h, cfg.Cosmos.Key != "", wantKey)
			}
			if _, ok := all[h]["APPLICATIONINSIGHTS_CONNECTION_STRING"]; h != "containerApp" && !ok {
				t.Errorf("%s: no APPLICATIONINSIGHTS_CONNECTION_STRING; the host's logs would go nowhere", h)
			}
		})
	}

	fn := all["functionApp"]
	if fn["AZURE_TOKEN_CREDENTIALS"] != "ManagedIdentityCredential" {
		t.Errorf("functionApp: AZURE_TOKEN_CREDENTIALS = %q, want ManagedIdentityCredential", fn["AZURE_TOKEN_CREDENTIALS"])
	}
	if _, ok := fn["AzureWebJobsStorage__accountName"]; !ok {
		t.Error("functionApp: no AzureWebJobsStorage__accountName; the host has no storage")
	}
	// Flex Consumption rejects these as app settings (runtime and package
	// come from functionAppConfig).
	for _, k := range []string{"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE", "AzureWebJobsStorage"} {
		if _, ok := fn[k]; ok {
			t.Errorf("functionApp sets %s, which Flex Consumption does not take as an app setting (or a key-based connection)", k)
		}
	}
}

// TestBicepFunctionAppIsFlexCustomHandler: the functionApp hosting is a Flex
// Consumption app running the custom handler with a managed identity, on
// storage reached by identity, with Cosmos DB's data-plane role and the
// account keys off.
func TestBicepFunctionAppIsFlexCustomHandler(t *testing.T) {
	src := readRepoFile(t, "infra/main.bicep")
	contains := func(what, block string, wants ...string) {
		t.Helper()
		for _, w := range wants {
			if !strings.Contains(block, w) {
				t.Errorf("%s lacks %q", what, w)
			}
		}
	}
	plan := bicepBlock(t, src, "resource functionPlan ")
	contains("the plan", plan, "if (useFunction)", "name: 'FC1'", "tier: 'FlexConsumption'", "reserved: true")

	app := bicepBlock(t, src, "resource functionApp ")
	contains("the function app", app, "if (useFunction)", "kind: 'functionapp,linux'", "type: 'SystemAssigned'", "httpsOnly: true",
		"type: 'blobContainer'", "type: 'SystemAssignedIdentity'", "instanceMemoryMB: 512", "maximumInstanceCount: functionMaxInstances")
	rt := bicepBlock(t, app[strings.Index(app, "runtime: {"):], "runtime: {")
	contains("functionAppConfig.runtime", rt, "name: 'custom'", "version: '1.0'")
	// functionAppConfig exists from Microsoft.Web 2023-12-01 on.
	v := regexp.MustCompile(`'Microsoft\.Web/sites@(\d{4}-\d{2}-\d{2})'`).FindStringSubmatch(app)
	if v == nil || v[1] < "2023-12-01" {
		t.Errorf("Microsoft.Web/sites API version %v predates functionAppConfig (2023-12-01)", v)
	}
	for _, name := range []string{"'scm'", "'ftp'"} {
		i := strings.Index(src, "name: "+name)
		if i < 0 || !strings.Contains(src[i:min(len(src), i+120)], "allow: false") {
			t.Errorf("basic-auth publishing credentials %s are not switched off", name)
		}
	}

	storage := bicepBlock(t, src, "resource storage ")
	contains("the storage account", storage, "allowSharedKeyAccess: false", "allowBlobPublicAccess: false", "minimumTlsVersion: 'TLS1_2'")
	roles := bicepBlock(t, src, "resource storageRoles ")
	contains("the storage role assignments", roles, "useFunction && grantStorageRoles", "functionApp.identity.principalId", "principalType: 'ServicePrincipal'")
	contains("the storage roles", bicepBlock(t, src, "var storageRoleIds = ["), "b7e6dc6d-f1e8-4753-8033-0f276bb0955b")

	cosmosRole := bicepBlock(t, src, "resource cosmosDataRole ")
	contains("the Cosmos role assignment", cosmosRole, "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@", "if (useFunction)",
		"sqlRoleDefinitions/${cosmosDataContributor}", "principalId: functionApp.identity.principalId", "scope: cosmos.id")
	contains("the Cosmos data role", src, "var cosmosDataContributor = '00000000-0000-0000-0000-000000000002'")
	contains("the Cosmos account", bicepBlock(t, src, "resource cosmos "), "disableLocalAuth: useFunction")
}

// bicepOutputs lists the template's outputs.
func bicepOutputs(t *testing.T) []string {
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^output (\w+) `).FindAllStringSubmatch(readRepoFile(t, "infra/main.bicep"), -1) {
		names = append(names, m[1])
	}
	return names
}

// TestOutputsNamedByWorkflowAndDocsExist: every output the deploy workflow
// reads and every output docs/DEPLOY.md names is one the template has.
func TestOutputsNamedByWorkflowAndDocsExist(t *testing.T) {
	outputs := bicepOutputs(t)
	for _, want := range []string{"hosting", "publicUrl", "redirectUri", "siteHostname", "functionAppName", "functionAppPrincipalId", "storageAccountName"} {
		if !slices.Contains(outputs, want) {
			t.Errorf("main.bicep has no output %s", want)
		}
	}
	wf := readRepoFile(t, ".github/workflows/deploy.yml")
	used := regexp.MustCompile(`\.(\w+)\.value`).FindAllStringSubmatch(wf, -1)
	if len(used) < 5 {
		t.Fatalf("found only %d outputs read in deploy.yml", len(used))
	}
	for _, m := range used {
		if !slices.Contains(outputs, m[1]) {
			t.Errorf("deploy.yml reads output %s, which main.bicep lacks", m[1])
		}
	}
	doc := readRepoFile(t, "docs/DEPLOY.md")
	named := regexp.MustCompile("`(\\w+)` outputs?\\b").FindAllStringSubmatch(doc, -1)
	i := strings.Index(doc, "| Output | What |")
	if i < 0 {
		t.Fatal("DEPLOY.md has no outputs table")
	}
	table := doc[i:]
	table = table[:strings.Index(table, "\n\n")]
	named = append(named, regexp.MustCompile("(?m)^\\| `(\\w+)`").FindAllStringSubmatch(table, -1)...)
	named = append(named, regexp.MustCompile("(?m), `(\\w+)`").FindAllStringSubmatch(table, -1)...)
	if len(named) < 10 {
		t.Fatalf("found only %d outputs named in DEPLOY.md", len(named))
	}
	for _, m := range named {
		if !slices.Contains(outputs, m[1]) {
			t.Errorf("DEPLOY.md names output %s, which main.bicep lacks", m[1])
		}
	}
}

// resourceNamespaces maps each hosting to the resource-provider namespaces
// of the resources main.bicep deploys for it.
func resourceNamespaces(t *testing.T) map[string][]string {
	src := readRepoFile(t, "infra/main.bicep")
	conds := map[string]string{"": "", "useSite": "staticWebApp", "useFunction": "functionApp", "useContainer": "containerApp"}
	out := map[string][]string{}
	add := func(h, ns string) {
		if !slices.Contains(out[h], ns) {
			out[h] = append(out[h], ns)
		}
	}
	res := regexp.MustCompile(`(?m)^resource \w+ '([A-Za-z.]+)/[^']*' = (?:\[for [^:]*: )?(?:if \((\w+)[^)]*\) )?[{]`).FindAllStringSubmatch(src, -1)
	if len(res) < 15 {
		t.Fatalf("found only %d resources in main.bicep", len(res))
	}
	for _, m := range res {
		ns, cond := m[1], m[2]
		h, ok := conds[cond]
		if !ok {
			t.Fatalf("resource of %s deployed under an unknown condition %q", ns, cond)
		}
		if strings.EqualFold(ns, "Microsoft.Authorization") { // always registered
			continue
		}
		for _, each := range hostings {
			if h == "" || h == each {
				add(each, ns)
			}
		}
	}
	for h := range out {
		sort.Strings(out[h])
	}
	return out
}

// TestProvidersMatchTemplateAndDocs: the providers the deploy workflow
// checks (scripts/azure-providers.sh) are exactly the namespaces of the
// resources the template deploys for each hosting, and docs/DEPLOY.md's
// `az provider register` lines name the same ones. A fresh subscription
// has them unregistered and the deploy identity cannot register them, so a
// missing one must be named before the deployment fails.
func TestProvidersMatchTemplateAndDocs(t *testing.T) {
	want := resourceNamespaces(t)

	doc := readRepoFile(t, "docs/DEPLOY.md")
	i := strings.Index(doc, "### Register the resource providers")
	if i < 0 {
		t.Fatal("DEPLOY.md has no section Register the resource providers")
	}
	block := doc[i:]
	block = block[strings.Index(block, "```sh")+5:]
	block = block[:strings.Index(block, "```")]
	documented := map[string][]string{}
	section := ""
	for _, line := range strings.Split(block, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "# every hosting":
			section = "*"
		case strings.HasPrefix(line, "# hosting="):
			section = strings.TrimPrefix(line, "# hosting=")
		case strings.HasPrefix(line, "az provider register --wait -n "):
			ns := strings.TrimPrefix(line, "az provider register --wait -n ")
			for _, h := range hostings {
				if (section == "*" || section == h) && !slices.Contains(documented[h], ns) {
					documented[h] = append(documented[h], ns)
				}
			}
		}
	}

	for _, h := range hostings {
		out, err := exec.Command("bash", "../scripts/azure-providers.sh", "--list", h).Output()
		if err != nil {
			t.Fatalf("azure-providers.sh --list %s: %v", h, err)
		}
		script := strings.Fields(string(out))
		sort.Strings(script)
		sort.Strings(documented[h])
		if !slices.Equal(script, want[h]) {
			t.Errorf("%s: scripts/azure-providers.sh checks %v; main.bicep deploys resources of %v", h, script, want[h])
		}
		if !slices.Equal(documented[h], want[h]) {
			t.Errorf("%s: DEPLOY.md registers %v; main.bicep deploys resources of %v", h, documented[h], want[h])
		}
	}
	if err := exec.Command("bash", "../scripts/azure-providers.sh", "--list", "appService").Run(); err == nil {
		t.Error("azure-providers.sh accepts an unknown hosting")
	}
}

// TestWorkflowsDeployWhatTheTemplateOffers: one workflow handles exactly the
// template's hostings; it validates the template before it creates it,
// deploys under the name whose outputs it later reads, pins every action to
// a commit, and deploys the Flex Consumption package the way that plan
// takes it. ci.yml runs .ci/run (so "ci passed" means the local checks) and
// can be started by hand.
func TestWorkflowsDeployWhatTheTemplateOffers(t *testing.T) {
	src := readRepoFile(t, "infra/main.bicep")
	allowed := bicepBlock(t, src[strings.Index(src, "@description('Where devicegate runs"):], "@allowed([")
	got := regexp.MustCompile(`'(\w+)'`).FindAllStringSubmatch(allowed, -1)
	var params []string
	for _, m := range got {
		params = append(params, m[1])
	}
	if !slices.Equal(params, hostings) || !strings.Contains(src, "param hosting string = 'staticWebApp'") {
		t.Errorf("main.bicep hosting: allowed %v (default staticWebApp), want %v", params, hostings)
	}

	wf := readRepoFile(t, ".github/workflows/deploy.yml")
	if !strings.Contains(wf, "staticWebApp|functionApp|containerApp) ;;") {
		t.Error("deploy.yml's gate does not accept exactly the three hostings")
	}
	v, c := strings.Index(wf, `az deployment group validate "${params[@]}"`), strings.Index(wf, `az deployment group create "${params[@]}"`)
	if v < 0 || c < 0 || v > c {
		t.Error("deploy.yml must run az deployment group validate before az deployment group create")
	}
	if !strings.Contains(wf, "--name devicegate") || !strings.Contains(wf, "-n devicegate") {
		t.Error("deploy.yml must deploy as, and read the outputs of, the deployment named devicegate")
	}
	if !strings.Contains(wf, "grantStorageRoles=false") {
		t.Error("deploy.yml's Contributor identity must not try to create role assignments (grantStorageRoles=false)")
	}
	for _, w := range []string{"sku: flexconsumption", "package: dist/functionapp.zip", "bash scripts/azure-providers.sh", "::add-mask::"} {
		if !strings.Contains(wf, w) {
			t.Errorf("deploy.yml lacks %q", w)
		}
	}
	// The check never takes another hosting's address: the URL comes from
	// this deployment, or from a custom-domain variable the gate vetted.
	if !regexp.MustCompile(`owner" != "\$HOSTING"`).MatchString(wf) {
		t.Error("deploy.yml's gate no longer refuses another hosting's address in DEVICEGATE_PUBLIC_URL")
	}
	if !strings.Contains(wf, `if [ "$deployed" != functionApp ]`) {
		t.Error("deploy.yml no longer refuses a deployment whose outputs describe another hosting")
	}

	ci := readRepoFile(t, ".github/workflows/ci.yml")
	if !regexp.MustCompile(`(?m)^  workflow_dispatch:`).MatchString(ci) {
		t.Error("ci.yml cannot be started by hand (workflow_dispatch)")
	}
	if !regexp.MustCompile(`(?m)^\s+bash \.ci/run$`).MatchString(ci) {
		t.Error("ci.yml does not run .ci/run")
	}

	for name, body := range map[string]string{"deploy.yml": wf, "ci.yml": ci} {
		uses := regexp.MustCompile(`(?m)uses: (\S+)`).FindAllStringSubmatch(body, -1)
		if len(uses) < 3 {
			t.Fatalf("%s: found only %d actions", name, len(uses))
		}
		for _, u := range uses {
			if !regexp.MustCompile(`@[0-9a-f]{40}$`).MatchString(u[1]) {
				t.Errorf("%s: %s is not pinned to a commit", name, u[1])
			}
		}
	}
}

// TestDeployDocIsSound: links inside docs/DEPLOY.md resolve to its headings
// (GitHub's slugs), the role assignment names the principal by object id
// and type, Go is a prerequisite, and the public URL is never given a
// second scheme. staticwebapp.config.json declares a living Node version.
func TestDeployDocIsSound(t *testing.T) {
	doc := readRepoFile(t, "docs/DEPLOY.md")
	slugs := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#+ (.+)$`).FindAllStringSubmatch(doc, -1) {
		s := strings.ToLower(strings.TrimSpace(m[1]))
		s = regexp.MustCompile(`[^a-z0-9 _-]`).ReplaceAllString(s, "")
		slugs[strings.ReplaceAll(s, " ", "-")] = true
	}
	links := regexp.MustCompile(`\]\(#([^)]+)\)`).FindAllStringSubmatch(doc, -1)
	if len(links) < 10 {
		t.Fatalf("found only %d links inside DEPLOY.md", len(links))
	}
	for _, l := range links {
		if !slugs[l[1]] {
			t.Errorf("DEPLOY.md links to #%s, which is no heading of it", l[1])
		}
	}
	// Links from elsewhere into DEPLOY.md.
	for _, f := range []string{".github/workflows/deploy.yml", "scripts/azure-providers.sh", "README.md", "api/launch.sh"} {
		for _, m := range regexp.MustCompile(`DEPLOY\.md#([a-z0-9-]+)`).FindAllStringSubmatch(readRepoFile(t, f), -1) {
			if !slugs[m[1]] {
				t.Errorf("%s links to DEPLOY.md#%s, which is no heading of it", f, m[1])
			}
		}
	}
	for _, h := range hostings {
		if !slugs["hosting-"+strings.ToLower(h)] {
			t.Errorf("DEPLOY.md has no section for hosting %s", h)
		}
	}

	if strings.Contains(doc, "https://<publicUrl>") {
		t.Error("DEPLOY.md prefixes the publicUrl output, which already has its scheme, with https://")
	}
	if !strings.Contains(doc, "az role assignment create --assignee-object-id \"$sp\" --assignee-principal-type ServicePrincipal") ||
		regexp.MustCompile(`az role assignment create --assignee "`).MatchString(doc) {
		t.Error("DEPLOY.md's role assignment must name the principal by object id and type")
	}
	prereq := doc[:strings.Index(doc, "## Which one")]
	if !strings.Contains(prereq, "**Go**") {
		t.Error("DEPLOY.md's prerequisites do not name Go (devicegate-check is run with go run)")
	}

	var swa struct {
		Platform struct {
			APIRuntime string `json:"apiRuntime"`
		} `json:"platform"`
	}
	if err := json.Unmarshal([]byte(readRepoFile(t, "staticwebapp.config.json")), &swa); err != nil {
		t.Fatal(err)
	}
	// Node 20 reached end of life in April 2026; Static Web Apps lists
	// node:22 for managed functions (learn.microsoft.com, static-web-apps/
	// languages-runtimes).
	if swa.Platform.APIRuntime != "node:22" {
		t.Errorf("staticwebapp.config.json apiRuntime %q, want node:22", swa.Platform.APIRuntime)
	}
}

// TestProviderCheckNamesTheMissingOne runs scripts/azure-providers.sh as the
// deploy workflow does, against a stand-in `az` that answers like
// `az provider show --query registrationState -o tsv`: an unregistered
// provider fails the job and is named with the command that fixes it; a
// provider whose state cannot be read (no subscription-scope read access)
// only warns; all registered passes.
func TestProviderCheckNamesTheMissingOne(t *testing.T) {
	dir := t.TempDir()
	az := `#!/bin/sh
# az provider show -n NAMESPACE --query registrationState -o tsv
ns=$4
case " $UNREGISTERED " in *" $ns "*) echo NotRegistered; exit 0 ;; esac
case " $UNREADABLE " in *" $ns "*) echo "AuthorizationFailed" >&2; exit 1 ;; esac
echo Registered
`
	if err := os.WriteFile(dir+"/az", []byte(az), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(hosting, unregistered, unreadable string) (string, error) {
		cmd := exec.Command("bash", "../scripts/azure-providers.sh", hosting)
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "UNREGISTERED="+unregistered, "UNREADABLE="+unreadable)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("functionApp", "", ""); err != nil {
		t.Errorf("all registered: %v\n%s", err, out)
	}
	out, err := run("functionApp", "Microsoft.Storage", "")
	if err == nil || !strings.Contains(out, "::error::") || !strings.Contains(out, "az provider register --wait -n Microsoft.Storage") {
		t.Errorf("Microsoft.Storage unregistered: err %v, output:\n%s", err, out)
	}
	if strings.Contains(out, "-n Microsoft.Web") {
		t.Errorf("names a registered provider as missing:\n%s", out)
	}
	if out, err := run("containerApp", "Microsoft.App", ""); err == nil || !strings.Contains(out, "-n Microsoft.App") {
		t.Errorf("Microsoft.App unregistered: err %v, output:\n%s", err, out)
	}
	out, err = run("staticWebApp", "", "Microsoft.Web")
	if err != nil || !strings.Contains(out, "::warning::") || !strings.Contains(out, "Microsoft.Web") {
		t.Errorf("unreadable state should warn and pass: err %v, output:\n%s", err, out)
	}
}

// workflowStep returns the run: script of the step in deploy.yml whose
// first line is marker (e.g. "      - id: sha"), dedented, as GitHub runs it.
func workflowStep(t *testing.T, marker string) string {
	t.Helper()
	wf := readRepoFile(t, ".github/workflows/deploy.yml")
	i := strings.Index(wf, marker+"\n")
	if i < 0 {
		t.Fatalf("deploy.yml has no step %q", marker)
	}
	rest := wf[i:]
	j := strings.Index(rest, "        run: |\n")
	if j < 0 {
		t.Fatalf("step %q has no run: | script", marker)
	}
	var lines []string
	for _, line := range strings.Split(rest[j+len("        run: |\n"):], "\n") {
		if line != "" && !strings.HasPrefix(line, "          ") {
			break
		}
		lines = append(lines, strings.TrimPrefix(line, "          "))
	}
	return strings.Join(lines, "\n")
}

// runStep runs a workflow script the way GitHub does (bash -e, pipefail),
// with the given environment and stand-in commands first on PATH.
func runStep(t *testing.T, script string, env map[string]string, standIns map[string]string) (string, map[string]string, error) {
	t.Helper()
	// The deploy steps parse az's JSON with jq, as GitHub's runners have it;
	// so does every machine .ci/run runs on (ci.yml installs it).
	if _, err := exec.LookPath("jq"); err != nil {
		t.Fatal("jq is needed to run the deploy workflow's steps: apt-get install jq")
	}
	dir := t.TempDir()
	for name, body := range standIns {
		if err := os.WriteFile(dir+"/"+name, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	outFile := dir + "/github_output"
	cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "GITHUB_OUTPUT="+outFile, "GITHUB_SHA=0123456789abcdef")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	outputs := map[string]string{}
	if b, e := os.ReadFile(outFile); e == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				outputs[k] = v
			}
		}
	}
	return string(out), outputs, err
}

// TestGateRefusesAnotherHostingsAddress runs the deploy gate's script: a
// DEVICEGATE_PUBLIC_URL holding another hosting's default address stops
// the deploy with a message naming both; the hosting's own address and a
// custom domain pass; an unknown hosting is refused.
func TestGateRefusesAnotherHostingsAddress(t *testing.T) {
	script := workflowStep(t, "      - id: sha")
	cases := []struct {
		hosting, url string
		ok           bool
	}{
		{"containerApp", "https://devicegate.azurestaticapps.net", false},
		{"functionApp", "https://nice-sea-0a1b2c3d4.5.azurestaticapps.net", false},
		{"staticWebApp", "https://devicegate-app.example.westeurope.azurecontainerapps.io", false},
		{"containerApp", "https://devicegate-abc-d9e8f7.westeurope-01.azurewebsites.net", false},
		{"functionApp", "https://devicegate-abc.azurewebsites.net", true},
		{"containerApp", "https://login.example.org", true},
		{"functionApp", "", true},
		{"appService", "", false},
	}
	for _, c := range cases {
		out, outputs, err := runStep(t, script, map[string]string{"HOSTING": c.hosting, "PUBLIC_URL": c.url, "EVENT": "workflow_run", "RUN_SHA": "feedface"}, nil)
		if (err == nil) != c.ok {
			t.Errorf("hosting %s, DEVICEGATE_PUBLIC_URL %q: passed = %v, want %v\n%s", c.hosting, c.url, err == nil, c.ok, out)
			continue
		}
		if !c.ok && c.url != "" && !(strings.Contains(out, "::error::") && strings.Contains(out, c.hosting) && strings.Contains(out, c.url)) {
			t.Errorf("hosting %s, %q: the refusal does not name the hosting and the address:\n%s", c.hosting, c.url, out)
		}
		if c.ok && (outputs["hosting"] != c.hosting || outputs["sha"] != "feedface") {
			t.Errorf("hosting %s: gate outputs %v", c.hosting, outputs)
		}
	}
}

// TestFunctionAppJobUsesOnlyItsOwnDeployment runs the functionapp job's
// target step against a stand-in az: outputs of another hosting are
// refused (their address is not used), a missing storage role is named,
// and a functionApp deployment yields its app and its own address.
func TestFunctionAppJobUsesOnlyItsOwnDeployment(t *testing.T) {
	script := workflowStep(t, "      - id: target")
	outputs := func(hosting string) string {
		return `{"hosting":{"value":"` + hosting + `"},"publicUrl":{"value":"https://` + hosting + `.example.net"},` +
			`"functionAppName":{"value":"devicegate-abc"},"functionAppPrincipalId":{"value":"11111111-2222-3333-4444-555555555555"},` +
			`"storageAccountName":{"value":"devicegateabc"}}`
	}
	az := func(hosting, roles string) map[string]string {
		return map[string]string{"az": `
case "$1 $2 $3" in
  "deployment group show") cat <<'JSON'
` + outputs(hosting) + `
JSON
  ;;
  "storage account show") echo /subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/devicegateabc ;;
  "rest --method get") case "$*" in *"principalId%20eq%20'11111111-2222-3333-4444-555555555555'"*) printf '%s\n' ` + roles + ` ;; esac ;;
  *) echo "unexpected az $*" >&2; exit 2 ;;
esac
`}
	}
	owner := "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
	env := map[string]string{"RESOURCE_GROUP": "devicegate"}

	for _, other := range []string{"staticWebApp", "containerApp"} {
		out, got, err := runStep(t, script, env, az(other, owner))
		if err == nil || !strings.Contains(out, "hosting="+other) || got["url"] != "" {
			t.Errorf("outputs of %s: err %v, outputs %v\n%s", other, err, got, out)
		}
	}
	out, got, err := runStep(t, script, env, az("functionApp", "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/ba92f5b4-2d11-453d-a403-e96b0029c9fe"))
	if err == nil || !strings.Contains(out, "Storage Blob Data Owner") || got["app"] != "" {
		t.Errorf("no Blob Data Owner role: err %v, outputs %v\n%s", err, got, out)
	}
	out, got, err = runStep(t, script, env, az("functionApp", owner))
	if err != nil || got["app"] != "devicegate-abc" || got["url"] != "https://functionApp.example.net" {
		t.Errorf("a functionApp deployment: err %v, outputs %v\n%s", err, got, out)
	}
}
