// devicegate on Azure. One switch, `hosting`, picks where the binary runs:
//   staticWebApp (default)  a Static Web App (Free) whose managed functions
//                           run the Go custom handler;
//   functionApp             an Azure Functions app on the Flex Consumption
//                           plan (FC1) running the same custom handler
//                           (runtime "custom"), serving the pages and the
//                           API on one origin; it reaches Cosmos DB with its
//                           managed identity, no key;
//   containerApp            the same binary, serving its embedded pages and
//                           the API, on Azure Container Apps (Consumption,
//                           scale to zero), pulling a public image from
//                           GitHub Container Registry.
// All keep the device-flow records in Cosmos DB (free tier, or serverless),
// and send the handler's output to a workspace-based Application Insights /
// Log Analytics workspace with a daily cap inside the free allowance.
// Which one to pick, what each costs, and the sources: docs/DEPLOY.md.
//
// Deploy into an existing resource group (always under the deployment name
// "devicegate": the deploy workflow reads the outputs of that deployment):
//   az deployment group create -g <group> -n devicegate -f infra/main.bicep -p infra/main.parameters.json \
//     -p upstreamClientSecret=<secret> secretKey=$(openssl rand -base64 32)

targetScope = 'resourceGroup'

@description('Base name for the resources; letters, digits and hyphens.')
@minLength(3)
@maxLength(24)
param name string = 'devicegate'

@description('Where devicegate runs: staticWebApp (managed functions, the default), functionApp (Azure Functions Flex Consumption, the documented custom-handler host) or containerApp (Azure Container Apps). See docs/DEPLOY.md.')
@allowed([
  'staticWebApp'
  'functionApp'
  'containerApp'
])
param hosting string = 'staticWebApp'

@description('Region for the Static Web App (Free is offered in a few regions only).')
@allowed([
  'westus2'
  'centralus'
  'eastus2'
  'westeurope'
  'eastasia'
])
param siteLocation string = 'westeurope'

@description('Region for the Function App or Container App, Log Analytics and Application Insights. functionApp: a region that offers Flex Consumption (az functionapp list-flexconsumption-locations).')
param location string = resourceGroup().location

@description('Region for Cosmos DB. Pick another one if Azure answers that the region is "experiencing high demand" (docs/DEPLOY.md).')
param cosmosLocation string = resourceGroup().location

@description('true: the free tier (1000 RU/s and 25 GB free; one account per subscription). false: serverless, billed per request (no 1000 RU/s provisioned).')
param cosmosFreeTier bool = true

@description('containerApp only: the image, e.g. ghcr.io/<owner>/devicegate:<commit> (public; the deploy workflow pushes it).')
param containerImage string = ''

@description('functionApp only: the most instances Flex Consumption may run at once (40 is the lowest maximum the platform accepts). Each instance bills only while it runs.')
@minValue(40)
@maxValue(1000)
param functionMaxInstances int = 40

@description('functionApp only: create the Azure role assignments that let the app\'s identity use its deployment storage. Needs Microsoft.Authorization/roleAssignments/write (Owner, or Role Based Access Control Administrator), which a deploy identity that is Contributor on the resource group lacks: the deploy workflow passes false and checks that the assignments exist. The Cosmos DB data-plane role is a Cosmos resource and is always created.')
param grantStorageRoles bool = true

@description('Daily cap for ingested logs in GB. 0.15 GB a day stays inside Log Analytics\' 5 GB a month free allowance.')
param logDailyCapGb string = '0.15'

@description('Default upstream provider: spotify, strava, discord, dropbox, twitch, generic or oidc (generic and oidc take their DEVICEGATE_UPSTREAM_* settings in extraSettings; see docs/FORKING.md).')
param upstream string = 'spotify'

@description('Client id of your app at the provider.')
param upstreamClientId string

@description('Client secret of your app at the provider.')
@secure()
param upstreamClientSecret string

@description('Device clients allowed, as JSON (see README). Keep the "devicegate-check" client so the deployment check can run.')
param clients string

@description('Base64 of 32 random bytes (openssl rand -base64 32): keys code hashing and token sealing.')
@secure()
param secretKey string

@description('Further app settings, e.g. {"DEVICEGATE_UPSTREAM_ISSUER": "https://…", "STRAVA_SECRET": "…"}: the generic/oidc upstream settings, and the secrets named by client_secret_env in the clients list. Secure, as it may hold secrets.')
@secure()
param extraSettings object = {}

@description('Public URL, e.g. your custom domain https://login.example.org. Empty: the default hostname of the Static Web App, the Function App or the Container App.')
param publicUrl string = ''

@description('Log level of the handler: debug for a first deploy, info afterwards.')
@allowed([
  'debug'
  'info'
  'warn'
  'error'
])
param logLevel string = 'info'

var useSite = hosting == 'staticWebApp'
var useFunction = hosting == 'functionApp'
var useContainer = hosting == 'containerApp'
var suffix = uniqueString(resourceGroup().id)
var cosmosAccountName = toLower('${name}-${suffix}')
var databaseName = 'devicegate'
var containerName = 'records'
var containerAppName = toLower(take('${name}-app', 32))
// Function app names are global (<name>.azurewebsites.net): the suffix makes
// this one unique, as it does for Cosmos.
var functionAppName = toLower('${name}-${suffix}')
// Storage account names: 3–24 lowercase letters and digits, global.
var storageAccountName = toLower('${take(replace(name, '-', ''), 11)}${suffix}')
var packageContainerName = 'app-package'

// ---------- Cosmos DB ----------

resource cosmos 'Microsoft.DocumentDB/databaseAccounts@2024-05-15' = {
  name: cosmosAccountName
  location: cosmosLocation
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    enableFreeTier: cosmosFreeTier
    // Free tier: never bill beyond the free 1000 RU/s. Serverless: billed
    // per request unit consumed, nothing provisioned.
    capacity: cosmosFreeTier ? {
      totalThroughputLimit: 1000
    } : null
    capabilities: cosmosFreeTier ? [] : [
      {
        name: 'EnableServerless'
      }
    ]
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
    // functionApp signs in with its managed identity (Microsoft Entra ID), so
    // the account keys are switched off: no key exists that could leak. The
    // other hostings read the key (managed functions have no identity).
    disableLocalAuth: useFunction
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-05-15' = {
  parent: cosmos
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
    // Free tier: the database shares the free 1000 RU/s. Serverless
    // accounts take no throughput setting.
    options: cosmosFreeTier ? {
      throughput: 1000
    } : {}
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

// ---------- Logs: Log Analytics + workspace-based Application Insights ----------

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${name}-logs-${suffix}'
  location: location
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    // 30 days are included in the ingestion price.
    retentionInDays: 30
    // Ingestion stops for the day at the cap, so logs never cost money.
    workspaceCapping: {
      dailyQuotaGb: json(logDailyCapGb)
    }
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${name}-insights'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    RetentionInDays: 30
  }
}

// ---------- Settings shared by every hosting ----------

// Known when the deployment starts (parameters and literals), so the
// Container App's environment list can be built from it by a loop.
var fixedSettings = {
  DEVICEGATE_UPSTREAM: upstream
  DEVICEGATE_UPSTREAM_CLIENT_ID: upstreamClientId
  DEVICEGATE_CLIENTS: clients
  DEVICEGATE_STORE: 'cosmos'
  DEVICEGATE_COSMOS_DATABASE: databaseName
  DEVICEGATE_COSMOS_CONTAINER: containerName
  DEVICEGATE_TRUSTED_PROXY: 'true'
  DEVICEGATE_LOG_FORMAT: 'json'
  DEVICEGATE_LOG_LEVEL: logLevel
}
var secretSettings = {
  DEVICEGATE_UPSTREAM_CLIENT_SECRET: upstreamClientSecret
  DEVICEGATE_SECRET_KEY: secretKey
  DEVICEGATE_COSMOS_KEY: cosmos.listKeys().primaryMasterKey
}

// ---------- hosting = staticWebApp ----------

resource site 'Microsoft.Web/staticSites@2023-12-01' = if (useSite) {
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

var siteUrl = useSite ? 'https://${site.properties.defaultHostname}' : ''

resource settings 'Microsoft.Web/staticSites/config@2023-12-01' = if (useSite) {
  parent: site
  name: 'appsettings'
  // This resource replaces all app settings on every deployment, so settings
  // beyond the fixed ones come in through extraSettings, never by hand.
  properties: union(extraSettings, fixedSettings, secretSettings, {
    DEVICEGATE_COSMOS_ENDPOINT: cosmos.properties.documentEndpoint
    DEVICEGATE_PUBLIC_URL: empty(publicUrl) ? siteUrl : publicUrl
    // The Functions host behind the managed functions sends its traces and
    // the handler's console output here.
    APPLICATIONINSIGHTS_CONNECTION_STRING: insights.properties.ConnectionString
  })
  dependsOn: [
    container
  ]
}

// ---------- hosting = functionApp (Flex Consumption) ----------
//
// Flex Consumption takes its code from a blob container (the package the
// deploy workflow uploads) and runs it read-only; the app's system-assigned
// identity reads that container and the host's own storage, and signs in to
// Cosmos DB, so no key or connection string is stored anywhere. Sources for
// each property: docs/DEPLOY.md, "Azure platform facts".

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = if (useFunction) {
  name: storageAccountName
  location: location
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    // Identity only: the app, the platform and the deploy workflow all use
    // Microsoft Entra ID, so shared keys stay off.
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = if (useFunction) {
  parent: storage
  name: 'default'
}

resource packageContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = if (useFunction) {
  parent: blobService
  name: packageContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource functionPlan 'Microsoft.Web/serverfarms@2024-04-01' = if (useFunction) {
  name: '${name}-plan'
  location: location
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    // Linux: Flex Consumption runs on Linux only.
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = if (useFunction) {
  name: functionAppName
  location: location
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: functionPlan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${packageContainerName}'
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        // The smallest instance: devicegate's handler needs a few tens of MB.
        instanceMemoryMB: 512
        maximumInstanceCount: functionMaxInstances
      }
      // A custom handler: the host runs what host.json names (scripts/
      // assemble.sh builds dist/functionapp). FUNCTIONS_WORKER_RUNTIME is
      // not an app setting on Flex Consumption; this is where it goes.
      runtime: {
        name: 'custom'
        version: '1.0'
      }
    }
  }
  dependsOn: [
    packageContainer
  ]
}

// Deploys go through the SCM site with a Microsoft Entra token (the deploy
// workflow's OpenID Connect login); the basic-auth publishing credentials
// are switched off so no password can deploy.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = if (useFunction) {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = if (useFunction) {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

// The roles Microsoft's Flex Consumption sample gives the app's identity on
// its storage account: the deployment package and the host's own blobs
// (Blob Data Owner), and the queues and tables the host keeps there.
var storageRoleIds = [
  'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
  '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
  '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
]

resource storageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in storageRoleIds: if (useFunction && grantStorageRoles) {
  name: guid(storage.id, functionApp.id, roleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}]

// Cosmos DB's built-in Data Contributor (data plane: read and write items),
// scoped to this account. This is a Cosmos DB resource, not an Azure role
// assignment, so a Contributor on the resource group may create it.
var cosmosDataContributor = '00000000-0000-0000-0000-000000000002'

resource cosmosDataRole 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-05-15' = if (useFunction) {
  parent: cosmos
  name: guid(cosmos.id, functionApp.id, cosmosDataContributor)
  properties: {
    roleDefinitionId: '${cosmos.id}/sqlRoleDefinitions/${cosmosDataContributor}'
    principalId: functionApp.identity.principalId
    scope: cosmos.id
  }
}

var functionUrl = useFunction ? 'https://${functionApp.properties.defaultHostName}' : ''

resource functionSettings 'Microsoft.Web/sites/config@2024-04-01' = if (useFunction) {
  parent: functionApp
  name: 'appsettings'
  // Replaces all app settings on every deployment, as for the Static Web
  // App: settings beyond these come in through extraSettings.
  properties: union(extraSettings, fixedSettings, {
    DEVICEGATE_UPSTREAM_CLIENT_SECRET: upstreamClientSecret
    DEVICEGATE_SECRET_KEY: secretKey
    // No DEVICEGATE_COSMOS_KEY: with an endpoint and no key the store signs
    // in through azidentity's DefaultAzureCredential; AZURE_TOKEN_CREDENTIALS
    // narrows that to the managed identity (no probing of other sources).
    DEVICEGATE_COSMOS_ENDPOINT: cosmos.properties.documentEndpoint
    AZURE_TOKEN_CREDENTIALS: 'ManagedIdentityCredential'
    DEVICEGATE_PUBLIC_URL: empty(publicUrl) ? functionUrl : publicUrl
    // The host's own storage, reached with the app's identity.
    AzureWebJobsStorage__accountName: storageAccountName
    APPLICATIONINSIGHTS_CONNECTION_STRING: insights.properties.ConnectionString
  })
  dependsOn: [
    container
    cosmosDataRole
  ]
}

// ---------- hosting = containerApp ----------

resource appEnv 'Microsoft.App/managedEnvironments@2024-03-01' = if (useContainer) {
  name: '${name}-env'
  location: location
  properties: {
    // Console output (the handler's JSON lines) goes to the workspace:
    // table ContainerAppConsoleLogs_CL.
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: workspace.properties.customerId
        sharedKey: workspace.listKeys().primarySharedKey
      }
    }
    // Consumption only: no dedicated workload profile, nothing billed idle.
    workloadProfiles: [
      {
        name: 'Consumption'
        workloadProfileType: 'Consumption'
      }
    ]
  }
}

// The app's address is known before it exists: <app>.<environment domain>.
var containerUrl = useContainer ? 'https://${containerAppName}.${appEnv.properties.defaultDomain}' : ''

// Secrets become Container Apps secrets (names: lowercase, digits, '-'), and
// reach the binary as environment variables by reference. The lists are
// built from names known when the deployment starts (parameters and
// literals), as loops require.
var secretEnvNames = [
  'DEVICEGATE_UPSTREAM_CLIENT_SECRET'
  'DEVICEGATE_SECRET_KEY'
  'DEVICEGATE_COSMOS_KEY'
]
var secretEnv = concat(secretEnvNames, objectKeys(extraSettings))
var secretRefs = [for k in secretEnv: {
  name: k
  secretRef: contains(secretEnvNames, k) ? toLower(replace(k, '_', '-')) : 'x-${toLower(replace(k, '_', '-'))}'
}]
var fixedEnv = [for k in objectKeys(fixedSettings): {
  name: k
  value: fixedSettings[k]
}]
var containerOnlyEnv = [
  { name: 'DEVICEGATE_COSMOS_ENDPOINT', value: cosmos.properties.documentEndpoint }
  { name: 'DEVICEGATE_PUBLIC_URL', value: empty(publicUrl) ? containerUrl : publicUrl }
  // The image listens on $PORT; ingress sends traffic to 8080.
  { name: 'PORT', value: '8080' }
]

resource app 'Microsoft.App/containerApps@2024-03-01' = if (useContainer) {
  name: containerAppName
  location: location
  properties: {
    environmentId: appEnv.id
    workloadProfileName: 'Consumption'
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: true
        targetPort: 8080
        transport: 'auto'
        allowInsecure: false
      }
      secrets: [for (k, i) in secretEnv: {
        name: secretRefs[i].secretRef
        value: contains(secretEnvNames, k) ? secretSettings[k] : string(extraSettings[k])
      }]
    }
    template: {
      containers: [
        {
          name: 'devicegate'
          image: containerImage
          resources: {
            cpu: json('0.25')
            memory: '0.5Gi'
          }
          env: concat(fixedEnv, containerOnlyEnv, secretRefs)
          probes: [
            {
              type: 'Startup'
              httpGet: {
                path: '/api/health'
                port: 8080
              }
              periodSeconds: 2
              failureThreshold: 15
            }
          ]
        }
      ]
      // Scale to zero when idle: the Consumption plan bills only running
      // time, beyond its monthly free grant.
      scale: {
        minReplicas: 0
        maxReplicas: 1
        rules: [
          {
            name: 'http'
            http: {
              metadata: {
                concurrentRequests: '50'
              }
            }
          }
        ]
      }
    }
  }
  dependsOn: [
    container
  ]
}

var defaultUrl = useSite ? siteUrl : (useFunction ? functionUrl : containerUrl)
var url = empty(publicUrl) ? defaultUrl : publicUrl

@description('The hosting this deployment set up; the deploy workflow refuses to deploy another one over it.')
output hosting string = hosting

@description('The address people use (with its https:// scheme); run the deployment check against it.')
output publicUrl string = url

@description('Redirect URI to register at the provider.')
output redirectUri string = '${url}/api/callback'

@description('The platform\'s default host name of this hosting (no scheme): the address to point a custom domain at.')
output siteHostname string = replace(defaultUrl, 'https://', '')

@description('staticWebApp: get the deployment token with az staticwebapp secrets list -n <siteName> --query properties.apiKey -o tsv')
output siteName string = useSite ? site.name : ''

@description('functionApp: the Function App\'s name (the deploy workflow deploys the package to it).')
output functionAppName string = useFunction ? functionApp.name : ''

@description('functionApp: the object id of the app\'s managed identity.')
output functionAppPrincipalId string = useFunction ? functionApp.identity.principalId : ''

@description('functionApp: the storage account holding the deployment package and the host\'s state.')
output storageAccountName string = useFunction ? storage.name : ''

@description('containerApp: the Container App\'s name.')
output containerAppName string = useContainer ? app.name : ''

@description('Application Insights resource holding the handler\'s logs (staticWebApp, functionApp); the workspace holds them for containerApp.')
output insightsName string = insights.name
