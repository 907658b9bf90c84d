#!/usr/bin/env bash
# The main job (`make demo`): embedded PostgreSQL (unless HUB_DATABASE_URL is set),
# migrations, demo data, then `dagster dev`. Ctrl-C stops Dagster and the embedded server.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/hub-env.sh  # PATH, HUB_STATE_DIR, step, HUB_SECRET_KEYS, HUB_DATABASE_URL (embedded if unset)
DAGSTER_PORT="${DAGSTER_PORT:-3000}"
# the emulators from HUB_DEMO_PORT_BASE on (registry order), the web app on HUB_WEB_PORT; the hub
# demo commands read both, so a second demo runs beside this one on other ports (README)
export HUB_DEMO_PORT_BASE="${HUB_DEMO_PORT_BASE:-8101}"
export HUB_WEB_PORT="${HUB_WEB_PORT:-8000}"
HUB_URL="http://127.0.0.1:$HUB_WEB_PORT"
# the demo's customer webhook sink is on loopback, which the SSRF guard refuses by default
export HUB_OUTBOUND_ALLOW="${HUB_OUTBOUND_ALLOW:-127.0.0.1/32,::1}"

DAGSTER_PG_URL="${DAGSTER_PG_URL:-$(hub db url --dagster --show-password)}"
export DAGSTER_PG_URL

background_pids=()
cleanup() {
  trap '' INT PIPE  # a second Ctrl-C or a closed terminal must not cut the shutdown short
  for pid in "${background_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$started_embedded" ]; then
    step "stopping embedded PostgreSQL" || true
    hub db stop >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "migrating the hub database"
hub db upgrade
step "seeding demo companies, integrations and settings logins"
hub demo seed
DEMO_PASSWORD="$(python -c 'from hub.demo import DEMO_PASSWORD; print(DEMO_PASSWORD)')"

step "starting the provider emulators (log: $HUB_STATE_DIR/emulators.log)"
python -m emulators run --port-base "$HUB_DEMO_PORT_BASE" > "$HUB_STATE_DIR/emulators.log" 2>&1 &
background_pids+=($!)
# the web app's OAuth apps at the emulators (HUB_OAUTH_<PROVIDER>_CLIENT_ID/_CLIENT_SECRET/_BASE_URL):
# the settings pages' Connect buttons go to each emulator's consent page
eval "$(hub demo oauth-env)"
step "starting the hub web app (settings pages, webhook receiver) on $HUB_URL (log: $HUB_STATE_DIR/web.log)"
hub web run --port "$HUB_WEB_PORT" > "$HUB_STATE_DIR/web.log" 2>&1 &
background_pids+=($!)
running="$(python -m emulators wait --port-base "$HUB_DEMO_PORT_BASE" --also "hub web app=$HUB_URL/healthz")" \
  || { echo "    see the logs in $HUB_STATE_DIR" >&2; exit 1; }
sed 's/^/    /' <<<"$running"
url_of() { awk -v name="$1" '$1 == name {print $2}' <<<"$running"; }  # where `wait` found that emulator
step "connecting the demo integrations to the emulators (OAuth grants, order webhooks, live checks: a passing check makes an integration active; the pages' OAuth callback)"
hub demo connect
hub integration list
step "outbound webhooks: one endpoint per demo company, to the bundled customer sink ($(url_of webhook_sink))"
hub demo outbound
step "platform billing on the Stripe emulator ($(url_of stripe)): plans synced, Acme on a Pro trial, Bella on Business"
hub demo billing
step "AI assist's external model: the OpenAI-compatible emulator ($(url_of openai_chat)) for bill lines the assist's own model is unsure of, with a small monthly budget"
hub demo ai-external
step "notification routes: Slack #ops and an email for Acme's invoices, Slack #site for Acme's Procore RFIs, an SMS for Bella's orders"
hub notify add-route --company "Acme Builders" --name "ops channel" --kind slack --to '#ops' \
  --events invoice.status_changed,budget.alert,ai.budget_80 2>/dev/null || echo "    (ops channel: already there)"
# the Slack emulator starts with #general/#ops/#alerts/...: the site team's channel is added on every start
python -c "import httpx, sys; httpx.post(sys.argv[1] + '/_emulator/channels', json={'name': 'site', 'id': 'C0SITE0001'}, timeout=5).raise_for_status()" "$(url_of slack)" \
  || echo "    (#site not added to the Slack emulator)"
hub notify add-route --company "Acme Builders" --name "site channel" --kind slack --to '#site' \
  --events task.assigned,schedule.changed,budget.alert 2>/dev/null || echo "    (site channel: already there)"
hub notify add-route --company "Acme Builders" --name "ap email" --kind email --to ap@acme-builders.example \
  --template d-5f0c1a2b3c4d4e5f8a9b0c1d2e3f4a5b --events invoice.status_changed 2>/dev/null || echo "    (ap email: already there)"
hub notify add-route --company "Bella Pizza" --name "manager sms" --kind sms --to +15558675310 \
  --template 'Order {{external_id}} ({{provider}}) is {{status}}' --events order.status_changed 2>/dev/null || echo "    (manager sms: already there)"
step "starting the outbound dispatcher: webhooks and notifications, with delivery status tracking (log: $HUB_STATE_DIR/dispatch.log)"
HUB_PUBLIC_URL="$HUB_URL" hub webhooks dispatch > "$HUB_STATE_DIR/dispatch.log" 2>&1 &
background_pids+=($!)
step "preparing the sync demo: chart and bills imported, categories mapped, hub vendors and bills to export, a two-sided edit, a linked Procore project; remote edits to announce"
hub demo sync-data
step "AI assist: the bookkeeper's category mappings and vendor-match review, the line-coding model trained on the imported bills (~10 s, once), bills and vendors with suggestions to decide"
hub demo ai
step "placing demo orders on DoorDash and Uber Eats (${DEMO_ORDERS_PER_MINUTE:-6}/min; log: $HUB_STATE_DIR/orders.log)"
python -m emulators drive-orders --per-minute "${DEMO_ORDERS_PER_MINUTE:-6}" --targets "$(url_of ubereats),$(url_of doordash)" > "$HUB_STATE_DIR/orders.log" 2>&1 &
background_pids+=($!)
step "simulating the kitchen: POS orders in progress, ready (DoorDash is told), completed (log: $HUB_STATE_DIR/kitchen.log)"
hub demo kitchen > "$HUB_STATE_DIR/kitchen.log" 2>&1 &
background_pids+=($!)

export DAGSTER_HOME="$HUB_STATE_DIR/dagster_home"
mkdir -p "$DAGSTER_HOME"
cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"

step "starting Dagster: UI at http://127.0.0.1:$DAGSTER_PORT (Ctrl-C to stop)"
cat <<TXT
    Assets:    hub/integration_inventory, hub/connection_check (one partition per active integration),
               delivery/pos_orders (orders -> POS orders, accepted at the marketplace),
               quickbooks/* and xero/* (accounts, vendors, invoices, vendor_export, invoice_export, reconciliation,
               with data-quality checks) and procore/* (rfis, submittals, daily_logs, documents), one partition
               per connected account: materialize all of a partition, or launch quickbooks_sync_job ("sync now")
    Sensors:   new_orders_sensor launches process_orders_job as orders arrive (every few seconds);
               integration_partitions_sensor adds partitions within ~30 s; sync_log_* close dead runs' logs
    Schedules: inventory_hourly, quickbooks_nightly_schedule / xero_nightly_schedule (02:00 company time),
               procore_hourly_schedule, billing_nightly_reconciliation (03:30 UTC), ai_training_nightly_schedule
    Sync:      hub conflicts list (the vendor edited on both sides), hub mapping list 1, hub sync show 1
    Outbound:  order status changes signed to $(url_of webhook_sink)/_emulator/received (the customer sink);
               SMS to Bella's manager at $(url_of twilio)/_emulator/messages; hub webhooks list | deliveries ID;
               hub notify list | log
    Notify:    launch quickbooks_sync_job (quickbooks-1): the bill paid in the books -> Slack #ops + AP email;
               materialize procore/rfis (procore-2): RFI reassigned, due date moved, cost impact -> Slack #site (+ #ops);
               see $(url_of slack)/_emulator/messages and $(url_of sendgrid)/_emulator/messages
    AI assist: $HUB_URL/settings/integrations/ai (as admin@acme.example): what each task's thresholds mean (held-out
               charts), open suggestions to accept or reject; quickbooks_sync_job's exports apply and name them;
               ai/line_coding_model trains again (nightly, or after 20 verdicts)
    Settings:  $HUB_URL/settings/integrations  password for every demo login: $DEMO_PASSWORD
               admin@acme.example, viewer@acme.example, admin@bella.example, viewer@bella.example,
               owner@demo.example (admin of both companies: the company switcher); hub user list
               Connect: as admin@bella.example, "Connect" QuickBooks, Procore or Slack (as admin@acme.example, Xero)
               on the hub page, then Approve on the emulator's consent page; Disconnect on the Connection tab
    Orders:    hub web app $HUB_URL, emulator state at $(url_of ubereats)/_emulator/orders
    Billing:   $HUB_URL/settings/integrations/stripe (Stripe emulator $(url_of stripe)): plan, invoices, Checkout,
               "Manage billing" (portal); test cards 4242 4242 4242 4242 (pays), 4000 0000 0000 0341 (fails at
               renewal); time moves with: curl -X POST $(url_of stripe)/_emulator/clock -d '{"advance": 1296000}';
               stripe_billing_sensor applies the webhooks, billing_nightly_reconciliation repairs; hub billing status
    AI assist: $HUB_URL/settings/integrations/ai: lines below the low threshold (or before the first model) go to the
               OpenAI-compatible emulator $(url_of openai_chat) (see $(url_of openai_chat)/_emulator/completions); calls,
               tokens and cost per month in "Cost monitoring", stopped at the budget, ai.budget_80 to Slack #ops at 80%
    CLI:       see "CLI" in README.md (same HUB_DATABASE_URL / HUB_STATE_DIR and HUB_SECRET_KEYS as here)
TXT
# in the foreground, so Ctrl-C reaches dagster dev (a background job of a script would
# ignore SIGINT); the EXIT trap then stops the embedded server
dagster dev -w workspace.yaml -p "$DAGSTER_PORT"
