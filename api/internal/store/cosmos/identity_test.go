package cosmos

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestEndpointWithoutKeySignsInWithManagedIdentity: with an endpoint and no
// key (how infra/main.bicep configures hosting=functionApp, whose Cosmos DB
// account has its keys switched off), the store gets a Microsoft Entra
// token from the app's managed identity and sends it to Cosmos DB; no
// account key is involved. The identity is stood in for the way App Service
// and Azure Functions expose it to the process: IDENTITY_ENDPOINT and
// IDENTITY_HEADER (learn.microsoft.com, app-service/overview-managed-identity,
// "REST endpoint reference"); AZURE_TOKEN_CREDENTIALS=ManagedIdentityCredential
// is what the template sets, so DefaultAzureCredential tries nothing else.
func TestEndpointWithoutKeySignsInWithManagedIdentity(t *testing.T) {
	const identityHeader = "identity-header-for-the-test"
	var mu sync.Mutex
	var resources []string
	identity := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-IDENTITY-HEADER") != identityHeader {
			http.Error(w, "no identity header", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		resources = append(resources, r.URL.Query().Get("resource"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"access_token": "managed-identity-token",
			"expires_on":   strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10),
			"resource":     r.URL.Query().Get("resource"),
			"token_type":   "Bearer",
		})
	}))
	defer identity.Close()

	var auths []string
	cosmosDB := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"code":"NotFound","message":"no such item"}`))
	}))
	defer cosmosDB.Close()

	t.Setenv("IDENTITY_ENDPOINT", identity.URL+"/msi/token")
	t.Setenv("IDENTITY_HEADER", identityHeader)
	t.Setenv("AZURE_TOKEN_CREDENTIALS", "ManagedIdentityCredential")
	for _, k := range []string{"AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"} {
		// Unset, not empty: azidentity takes a present AZURE_CLIENT_ID, even
		// an empty one, as a user-assigned identity. t.Setenv restores it.
		t.Setenv(k, "")
		os.Unsetenv(k)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := New(ctx, Options{
		Endpoint:   cosmosDB.URL + "/",
		Database:   "devicegate",
		Container:  "records",
		Logger:     quiet,
		HTTPClient: cosmosDB.Client(),
	})
	if err != nil {
		t.Fatalf("New with an endpoint and no key: %v", err)
	}
	_, getErr := s.Get(ctx, "some-record") // the fake answers 404; what matters is how the request was signed
	t.Logf("Get: %v", getErr)

	mu.Lock()
	defer mu.Unlock()
	if len(auths) == 0 {
		t.Fatal("no request reached Cosmos DB")
	}
	host, _ := url.Parse(cosmosDB.URL)
	for _, a := range auths {
		v, err := url.QueryUnescape(a)
		if err != nil || !strings.HasPrefix(v, "type=aad&ver=1.0&sig=") || !strings.HasSuffix(v, "managed-identity-token") {
			t.Errorf("a request to Cosmos DB carried Authorization %q; want the managed identity's Entra token (type=aad)", a)
		}
	}
	if len(resources) == 0 {
		t.Fatal("the managed identity endpoint was never asked for a token")
	}
	for _, r := range resources {
		if !strings.Contains(r, host.Hostname()) {
			t.Errorf("token requested for %q, not for the Cosmos DB account %s", r, host.Hostname())
		}
	}
}
