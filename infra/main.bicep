// devicegate on Azure's free tier: a Static Web App (Free) whose managed
// functions run the Go custom handler, and a free-tier Cosmos DB account
// holding the device-flow records, cleaned up by TTL.
//
// Deploy into an existing resource group:
//   az deployment group create -g <group> -f infra/main.bicep -p infra/main.parameters.json \
//     -p upstreamClientSecret=<secret> secretKey=$(openssl rand -base64 32)

targetScope = 'resourceGroup'

@description('Base name for the resources; letters, digits and hyphens.')
@minLength(3)
@maxLength(24)
param name string = 'devicegate'

@description('Region for the Static Web App (Free is offered in a few regions only).')
@allowed([
  'westus2'
  'centralus'
  'eastus2'
  'westeurope'
  'eastasia'
])
param siteLocation string = 'westeurope'

@description('Region for Cosmos DB.')
param cosmosLocation string = resourceGroup().location

@description('Set false if this subscription already has its one free-tier Cosmos DB account.')
param cosmosFreeTier bool = true

@description('Default upstream provider: spotify, strava, discord, dropbox, twitch, generic or oidc (generic and oidc take their DEVICEGATE_UPSTREAM_* settings in extraSettings; see docs/FORKING.md).')
param upstream string = 'spotify'

@description('Client id of your app at the provider.')
param upstreamClientId string

@description('Client secret of your app at the provider.')
@secure()
param upstreamClientSecret string

@description('Device clients allowed, as JSON (see README).')
param clients string

@description('Base64 of 32 random bytes (openssl rand -base64 32): keys code hashing and token sealing.')
@secure()
param secretKey string

@description('Further app settings, e.g. {"DEVICEGATE_UPSTREAM_ISSUER": "https://…", "STRAVA_SECRET": "…"}: the generic/oidc upstream settings, and the secrets named by client_secret_env in the clients list. Secure, as it may hold secrets.')
@secure()
param extraSettings object = {}

@description('Public URL of the site, e.g. https://<name>.azurestaticapps.net or your custom domain. Empty: the default hostname.')
param publicUrl string = ''

var cosmosAccountName = toLower('${name}-${uniqueString(resourceGroup().id)}')
var databaseName = 'devicegate'
var containerName = 'records'

resource cosmos 'Microsoft.DocumentDB/databaseAccounts@2024-05-15' = {
  name: cosmosAccountName
  location: cosmosLocation
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    enableFreeTier: cosmosFreeTier
    // Never bill beyond the free 1000 RU/s.
    capacity: {
      totalThroughputLimit: 1000
    }
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    locations: [
      {
        locationName: cosmosLocation
        failoverPriority: 0
        isZoneRedundant: false
      }
    ]
    minimalTlsVersion: 'Tls12'
    disableLocalAuth: false
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-05-15' = {
  parent: cosmos
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
    // Shared throughput for the database: the free tier's 1000 RU/s.
    options: {
      throughput: 1000
    }
  }
}

resource container 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-05-15' = {
  parent: database
  name: containerName
  properties: {
    resource: {
      id: containerName
      partitionKey: {
        paths: [
          '/id'
        ]
        kind: 'Hash'
      }
      // TTL on with no default: every item carries its own ttl.
      defaultTtl: -1
      // Only point reads by id are made: index nothing, so writes cost less.
      indexingPolicy: {
        indexingMode: 'consistent'
        automatic: true
        includedPaths: []
        excludedPaths: [
          {
            path: '/*'
          }
        ]
      }
    }
  }
}

resource site 'Microsoft.Web/staticSites@2023-12-01' = {
  name: name
  location: siteLocation
  sku: {
    name: 'Free'
    tier: 'Free'
  }
  properties: {
    // Deployed by GitHub Actions with the deployment token, not linked here.
    allowConfigFileUpdates: true
    stagingEnvironmentPolicy: 'Enabled'
  }
}

resource settings 'Microsoft.Web/staticSites/config@2023-12-01' = {
  parent: site
  name: 'appsettings'
  // This resource replaces all app settings on every deployment, so settings
  // beyond the fixed ones come in through extraSettings, never by hand.
  properties: union(extraSettings, {
    DEVICEGATE_PUBLIC_URL: empty(publicUrl) ? 'https://${site.properties.defaultHostname}' : publicUrl
    DEVICEGATE_UPSTREAM: upstream
    DEVICEGATE_UPSTREAM_CLIENT_ID: upstreamClientId
    DEVICEGATE_UPSTREAM_CLIENT_SECRET: upstreamClientSecret
    DEVICEGATE_CLIENTS: clients
    DEVICEGATE_SECRET_KEY: secretKey
    DEVICEGATE_STORE: 'cosmos'
    DEVICEGATE_COSMOS_ENDPOINT: cosmos.properties.documentEndpoint
    DEVICEGATE_COSMOS_KEY: cosmos.listKeys().primaryMasterKey
    DEVICEGATE_COSMOS_DATABASE: databaseName
    DEVICEGATE_COSMOS_CONTAINER: containerName
    DEVICEGATE_TRUSTED_PROXY: 'true'
    DEVICEGATE_LOG_FORMAT: 'json'
  })
  dependsOn: [
    container
  ]
}

@description('The site\'s default hostname.')
output siteHostname string = site.properties.defaultHostname

@description('Redirect URI to register at the provider.')
output redirectUri string = '${empty(publicUrl) ? 'https://${site.properties.defaultHostname}' : publicUrl}/api/callback'

@description('Get the deployment token with: az staticwebapp secrets list -n <name> --query properties.apiKey -o tsv')
output siteName string = site.name
