#!/usr/bin/env bash
# The Azure resource providers each hosting of infra/main.bicep needs, and a
# check that they are registered in the subscription az is logged in to.
#
#   bash scripts/azure-providers.sh --list HOSTING   print them, one a line
#   bash scripts/azure-providers.sh HOSTING          check them (deploy workflow)
#
# A fresh subscription has most providers unregistered, and an identity that
# is Contributor on a resource group cannot register them
# (Microsoft.<ns>/register/action is a subscription-scope action): the
# subscription's owner runs `az provider register --wait -n NAME` once
# (docs/DEPLOY.md#register-the-resource-providers). The list must match the
# namespaces of the resources the template deploys for the hosting; a test
# (api/infra_test.go) compares them. Microsoft.Authorization is always
# registered.
set -euo pipefail

providers() {
  # Every hosting: Cosmos DB, Log Analytics, Application Insights.
  echo Microsoft.DocumentDB
  echo Microsoft.OperationalInsights
  echo Microsoft.Insights
  case "$1" in
    staticWebApp) echo Microsoft.Web ;;
    functionApp) echo Microsoft.Web; echo Microsoft.Storage ;;
    containerApp) echo Microsoft.App ;;
    *) echo "azure-providers.sh: unknown hosting '$1' (staticWebApp, functionApp or containerApp)" >&2; return 1 ;;
  esac
}

if [ "${1:-}" = --list ]; then
  providers "${2:-}"
  exit 0
fi

hosting=${1:?usage: azure-providers.sh [--list] HOSTING}
list=$(providers "$hosting")
missing=()
unknown=()
for ns in $list; do
  # Reading a provider's state needs read access at subscription scope,
  # which a resource-group Contributor may lack: then say so and go on
  # (the validation that follows fails with Azure's own message).
  if ! state=$(az provider show -n "$ns" --query registrationState -o tsv 2>/dev/null); then
    unknown+=("$ns")
    continue
  fi
  [ "$state" = Registered ] || missing+=("$ns")
done
if [ ${#unknown[@]} -gt 0 ]; then
  echo "::warning::cannot read the registration of ${unknown[*]} (this identity has no read access at subscription scope); make sure they are registered (docs/DEPLOY.md#register-the-resource-providers)"
fi
if [ ${#missing[@]} -gt 0 ]; then
  cmds=""
  for ns in "${missing[@]}"; do cmds="$cmds az provider register --wait -n $ns;"; done
  echo "::error::hosting=$hosting needs the resource provider(s) ${missing[*]}, not registered in this subscription. This deploy identity cannot register them: an Owner of the subscription runs once:$cmds (docs/DEPLOY.md#register-the-resource-providers)"
  exit 1
fi
echo "resource providers for hosting=$hosting: registered (${list//$'\n'/ })"
