'use strict';
/*
 * Example broker-integration service for gameday: express + opossum + prom-client,
 * written against docs/contract.md the way a product team would, with the libraries'
 * default behaviours left in place unless the contract names a number.
 *
 *   node server.js --host HOST --port PORT --broker-url URL --name NAME
 *
 * POST /orders  -> broker POST /orders (same client_order_id on every attempt)
 * GET  /health  liveness, never depends on the broker
 * GET  /ready   readiness, 503 "draining" from the moment SIGTERM arrives
 * GET  /metrics Prometheus text format (prom-client)
 */

const { parseArgs } = require('node:util');
const { performance } = require('node:perf_hooks');
const express = require('express');
const CircuitBreaker = require('opossum');
const promClient = require('prom-client');

// --- settings ---------------------------------------------------------------------

const ATTEMPT_TIMEOUT_MS = 800; // per broker call: keeps p95 <= 1 s while the broker hangs
const ORDER_BUDGET_MS = 900; // all attempts of one order together
const MAX_ATTEMPTS = 2;
const RETRY_BACKOFF_MS = 100; // when the broker sent no Retry-After
const MIN_ATTEMPT_MS = 200; // do not start an attempt with less time than this left
const DRAIN_DELAY_MS = 1000; // keep serving while the load balancer notices /ready = 503
const DRAIN_TIMEOUT_MS = 5000; // then wait at most this long for orders in flight
// An attempt sent but unanswered (timeout, connection broken after sending) may have
// been filled; when a later attempt then fails definitely (breaker open, connection
// refused), the default answers that failure and the client believes the order was not
// placed. KEEP_SENT_OUTCOME=1 (service-fixed.yaml) answers "outcome unknown" instead.
const KEEP_SENT_OUTCOME = process.env.KEEP_SENT_OUTCOME === '1';

// A whole number from the environment (the deployment's tuning), else the default.
function envInt (name, fallback, min, max) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    console.error(`${name}=${JSON.stringify(raw)}: expected a whole number ${min}..${max}`);
    process.exit(2);
  }
  return value;
}

// opossum options: the numbers the contract names, opossum's defaults for the rest.
// BREAKER_ERROR_THRESHOLD_PCT and BREAKER_ROLLING_WINDOW_MS tune the two that decide
// how fast it opens (service-fixed.yaml sets them; see README).
const BREAKER_OPTIONS = {
  name: 'broker-orders',
  timeout: ATTEMPT_TIMEOUT_MS, // default 10000
  resetTimeout: 5000, // default 30000; the contract's reference stays open 5 s
  errorThresholdPercentage: envInt('BREAKER_ERROR_THRESHOLD_PCT', 50, 1, 100), // default 50
  rollingCountTimeout: envInt('BREAKER_ROLLING_WINDOW_MS', 10000, 1000, 60000), // default 10000
  rollingCountBuckets: 10, // default 10
  volumeThreshold: 20 // default 0 (a single failure on an idle breaker would open it)
};

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4,
  0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 2, 3, 5, 10];
const SLIPPAGE_BUCKETS = [-5, -2, -1, -0.5, -0.25, 0, 0.25, 0.5, 1, 2, 5];
const ORDER_STATUSES = ['filled', 'rejected', 'failed', 'circuit_open'];
const BREAKER_STATES = ['closed', 'open', 'half_open'];
const MAX_TEXT_CHARS = 128;

// --- command line -----------------------------------------------------------------

function parseCommandLine (argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8080' },
      'broker-url': { type: 'string' },
      name: { type: 'string', default: process.env.HOSTNAME || 'broker-integration' }
    },
    strict: true
  });
  values['broker-url'] = values['broker-url'] || process.env.BROKER_URL;
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--port must be an integer 0..65535, got ${values.port}`);
  }
  if (!values['broker-url']) throw new Error('--broker-url (or BROKER_URL) is required');
  const brokerUrl = new URL(values['broker-url']);
  return {
    host: values.host,
    port,
    name: values.name,
    ordersUrl: new URL('orders', brokerUrl.href.endsWith('/') ? brokerUrl : brokerUrl.href + '/').href
  };
}

let config;
try {
  config = parseCommandLine(process.argv.slice(2));
} catch (err) {
  console.error(`usage: node server.js --host HOST --port PORT --broker-url URL --name NAME\n${err.message}`);
  process.exit(2);
}

function log (message) {
  console.log(`${new Date().toISOString()} ${config.name} ${message}`);
}

// --- metrics ----------------------------------------------------------------------

const register = promClient.register;
promClient.collectDefaultMetrics({ register });

const ordersTotal = new promClient.Counter({
  name: 'broker_orders_total',
  help: 'Order requests answered, by outcome.',
  labelNames: ['status']
});
for (const status of ORDER_STATUSES) ordersTotal.inc({ status }, 0);

const orderSeconds = new promClient.Histogram({
  name: 'broker_order_execution_seconds',
  help: 'Order latency inside the service, from request received to answer sent.',
  buckets: LATENCY_BUCKETS
});

const slippagePips = new promClient.Histogram({
  name: 'broker_slippage_pips',
  help: 'Fill price minus requested price, in pips (signed).',
  buckets: SLIPPAGE_BUCKETS
});

const apiRequestSeconds = new promClient.Histogram({
  name: 'broker_api_request_seconds',
  help: 'Duration of each call to the broker API (one observation per attempt).',
  labelNames: ['endpoint', 'status'],
  buckets: LATENCY_BUCKETS
});

const connectionStatus = new promClient.Gauge({
  name: 'broker_connection_status',
  help: '1 when the last broker call got an HTTP answer, else 0.'
});

const breakerStateGauge = new promClient.Gauge({
  name: 'broker_circuit_breaker_state',
  help: 'Circuit breaker state (one series per state, the current one is 1).',
  labelNames: ['broker_circuit_breaker_state']
});

const breakerTransitions = new promClient.Counter({
  name: 'broker_circuit_breaker_transitions_total',
  help: 'Circuit breaker state changes.',
  labelNames: ['from_state', 'to_state']
});
for (const from of BREAKER_STATES) {
  for (const to of BREAKER_STATES) {
    if (from !== to) breakerTransitions.inc({ from_state: from, to_state: to }, 0);
  }
}

const breakerLastTransition = new promClient.Gauge({
  name: 'broker_circuit_breaker_last_transition_timestamp_seconds',
  help: 'Unix time of the last circuit breaker state change (process start until the first).'
});
breakerLastTransition.set(Date.now() / 1000);

// --- broker client ----------------------------------------------------------------

/** A broker call that counts as a failure for the breaker (and may be retried). */
class BrokerFailure extends Error {
  constructor (kind, message, { status = null, retryAfter = null } = {}) {
    super(message);
    this.name = 'BrokerFailure';
    this.kind = kind; // 'http' | 'timeout' | 'connection' | 'unreadable'
    this.status = status;
    this.retryAfter = retryAfter; // the broker's Retry-After header, as sent
  }
}

function isAbort (err) {
  return err && (err.name === 'TimeoutError' || err.name === 'AbortError');
}

function describeError (err) {
  const cause = err && err.cause;
  if (cause && (cause.code || cause.message)) return `${err.message}: ${cause.code || cause.message}`;
  return String(err && err.message ? err.message : err);
}

/**
 * One attempt: POST the order to the broker. Resolves with a fill or a rejection (both
 * successes for the breaker); throws BrokerFailure for timeouts, connection errors, 5xx,
 * 429 and unreadable fills.
 */
async function sendOrder (order, timeoutMs) {
  const started = performance.now();
  let label = 'connection_error';
  try {
    const signal = AbortSignal.timeout(timeoutMs);
    let response;
    try {
      response = await fetch(config.ordersUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(order),
        signal
      });
    } catch (err) {
      if (isAbort(err)) {
        label = 'timeout';
        throw new BrokerFailure('timeout', `no answer within ${timeoutMs} ms`);
      }
      const failure = new BrokerFailure('connection', describeError(err));
      failure.neverSent = Boolean(err && err.cause && err.cause.code === 'ECONNREFUSED');
      throw failure;
    }
    label = String(response.status);
    let text;
    try {
      text = await response.text(); // always read it: undici keeps the socket until then
    } catch (err) {
      if (isAbort(err)) throw new BrokerFailure('timeout', `answer body not read within ${timeoutMs} ms`);
      throw new BrokerFailure('connection', describeError(err));
    }
    const status = response.status;
    if (status >= 200 && status < 300) {
      return { kind: 'filled', fill: readFill(text, status) };
    }
    if (status >= 400 && status < 500 && status !== 429) {
      const body = parseJson(text) || {};
      const reason = body.reason || body.error || `broker answered ${status}`;
      return { kind: 'rejected', status, reason: String(reason) };
    }
    throw new BrokerFailure('http', `broker answered ${status}`, {
      status, retryAfter: response.headers.get('retry-after')
    });
  } finally {
    apiRequestSeconds.observe({ endpoint: '/orders', status: label }, (performance.now() - started) / 1000);
    connectionStatus.set(/^\d+$/.test(label) ? 1 : 0);
  }
}

function parseJson (text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function readFill (text, status) {
  const fill = parseJson(text);
  const ok = fill && typeof fill === 'object' &&
    typeof fill.fill_id === 'string' &&
    typeof fill.fill_price === 'number' && Number.isFinite(fill.fill_price);
  if (!ok) throw new BrokerFailure('unreadable', `unreadable fill (HTTP ${status})`, { status });
  return fill;
}

// --- circuit breaker --------------------------------------------------------------

const breaker = new CircuitBreaker(sendOrder, BREAKER_OPTIONS);
let breakerState = 'closed';
let openedAt = 0;

function setBreakerState (to) {
  const from = breakerState;
  if (from === to) return;
  breakerState = to;
  for (const state of BREAKER_STATES) {
    breakerStateGauge.set({ broker_circuit_breaker_state: state }, state === to ? 1 : 0);
  }
  breakerTransitions.inc({ from_state: from, to_state: to });
  breakerLastTransition.set(Date.now() / 1000);
  log(`circuit breaker ${from} -> ${to}`);
}
for (const state of BREAKER_STATES) {
  breakerStateGauge.set({ broker_circuit_breaker_state: state }, state === 'closed' ? 1 : 0);
}

breaker.on('open', () => {
  openedAt = Date.now();
  setBreakerState('open');
});
breaker.on('halfOpen', () => setBreakerState('half_open'));
breaker.on('close', () => setBreakerState('closed'));

/** Seconds until the breaker lets a trial call through (at least 1). */
function circuitRetryAfter () {
  if (breakerState !== 'open') return 1;
  const ms = openedAt + BREAKER_OPTIONS.resetTimeout - Date.now();
  return Math.max(1, Math.ceil(ms / 1000));
}

/** Milliseconds to wait before retrying after err, or null when err is not retried. */
function retryDelayMs (err) {
  if (CircuitBreaker.isOurError(err)) {
    // opossum's own timeout is retryable; an open breaker or a full semaphore is not
    return err.code === 'ETIMEDOUT' ? 0 : null;
  }
  if (!(err instanceof BrokerFailure) || err.kind === 'unreadable') return null;
  if (err.kind === 'http' && err.retryAfter != null) {
    const seconds = Number(err.retryAfter);
    if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
    const date = Date.parse(err.retryAfter);
    if (!Number.isNaN(date)) return Math.max(0, date - Date.now());
  }
  return err.kind === 'timeout' ? 0 : RETRY_BACKOFF_MS;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether err ended an attempt that may have reached the broker without an answer. */
function unanswered (err) {
  if (err && err.code === 'ETIMEDOUT') return true; // opossum's own timeout
  return err instanceof BrokerFailure &&
    (err.kind === 'timeout' || (err.kind === 'connection' && !err.neverSent));
}

/** Place the order through the breaker, retrying failures within the time budget. */
async function placeOrder (order) {
  const deadline = performance.now() + ORDER_BUDGET_MS;
  let sent = null; // the last attempt that may have reached the broker unanswered
  for (let attempt = 1; ; attempt++) {
    const timeoutMs = Math.max(1, Math.min(ATTEMPT_TIMEOUT_MS, Math.floor(deadline - performance.now())));
    try {
      return await breaker.fire(order, timeoutMs);
    } catch (err) {
      if (unanswered(err)) sent = err;
      const wait = retryDelayMs(err);
      if (wait === null || attempt >= MAX_ATTEMPTS ||
          performance.now() + wait + MIN_ATTEMPT_MS > deadline) {
        throw (KEEP_SENT_OUTCOME && sent) ? sent : err;
      }
      if (wait > 0) await sleep(wait);
    }
  }
}

// --- HTTP API ---------------------------------------------------------------------

class InvalidOrder extends Error {
  constructor (message, field = null) {
    super(message);
    this.field = field;
  }
}

function textField (body, name) {
  const value = body[name];
  if (typeof value !== 'string' || value.length < 1 || value.length > MAX_TEXT_CHARS) {
    throw new InvalidOrder(`${name} must be a string of 1..${MAX_TEXT_CHARS} chars`, name);
  }
  return value;
}

function parseOrder (body) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new InvalidOrder('body must be a JSON object');
  }
  for (const name of ['client_order_id', 'instrument', 'units', 'price']) {
    if (!Object.hasOwn(body, name)) throw new InvalidOrder(`missing field: ${name}`, name);
  }
  const order = {
    client_order_id: textField(body, 'client_order_id'),
    instrument: textField(body, 'instrument'),
    units: body.units,
    price: body.price
  };
  if (!Number.isInteger(order.units) || order.units === 0) {
    throw new InvalidOrder('units must be a non-zero integer (negative = sell)', 'units');
  }
  if (typeof order.price !== 'number' || !Number.isFinite(order.price) || order.price <= 0) {
    throw new InvalidOrder('price must be a positive number', 'price');
  }
  return order;
}

function pipSize (instrument) {
  return instrument.toUpperCase().endsWith('JPY') ? 0.01 : 0.0001;
}

function answer (res, httpStatus, label, body, headers = {}) {
  if (label) ordersTotal.inc({ status: label });
  res.status(httpStatus).set(headers).json(body);
}

function answerFailure (res, err) {
  if (err && err.code === 'EOPENBREAKER') {
    return answer(res, 503, 'circuit_open', { error: 'circuit_open' },
      { 'Retry-After': String(circuitRetryAfter()) });
  }
  if ((err && err.code === 'ETIMEDOUT') || (err instanceof BrokerFailure && err.kind === 'timeout')) {
    return answer(res, 504, 'failed', { error: 'broker_timeout', detail: err.message });
  }
  const headers = {};
  if (err instanceof BrokerFailure && err.retryAfter != null) headers['Retry-After'] = err.retryAfter;
  return answer(res, 502, 'failed',
    { error: 'broker_unavailable', detail: String(err && err.message ? err.message : err) }, headers);
}

let phase = 'starting'; // starting | ready | draining

const app = express();
app.disable('x-powered-by');
app.use((req, res, next) => {
  if (phase === 'draining') res.set('Connection', 'close');
  next();
});

function timeOrder (req, res, next) {
  const started = performance.now();
  res.on('finish', () => orderSeconds.observe((performance.now() - started) / 1000));
  next();
}

app.post('/orders', timeOrder, express.json(), async (req, res) => {
  let order;
  try {
    order = parseOrder(req.body);
  } catch (err) {
    if (!(err instanceof InvalidOrder)) throw err;
    return res.status(400).json({ error: err.message, field: err.field });
  }
  let result;
  try {
    result = await placeOrder(order);
  } catch (err) {
    return answerFailure(res, err);
  }
  if (result.kind === 'rejected') {
    return answer(res, 422, 'rejected', { status: 'rejected', reason: result.reason });
  }
  const fill = result.fill;
  slippagePips.observe((fill.fill_price - order.price) / pipSize(order.instrument));
  return answer(res, 200, 'filled', {
    status: 'filled',
    fill_id: fill.fill_id,
    client_order_id: fill.client_order_id ?? order.client_order_id,
    instrument: fill.instrument ?? order.instrument,
    units: fill.units ?? order.units,
    fill_price: fill.fill_price,
    filled_at: fill.filled_at
  });
});

app.get('/health', (req, res) => {
  res.json({ status: 'ok', name: config.name, breaker: breakerState });
});

app.get('/ready', (req, res) => {
  if (phase === 'ready') return res.json({ status: 'ready', name: config.name });
  return res.status(503).json({ status: phase, name: config.name });
});

app.get('/metrics', async (req, res) => {
  res.set('Content-Type', register.contentType);
  res.end(await register.metrics());
});

app.use((req, res) => {
  res.status(404).json({ error: 'not found', status: 404 });
});

// eslint-disable-next-line no-unused-vars
app.use((err, req, res, next) => {
  if (err.type === 'entity.parse.failed') {
    return res.status(400).json({ error: 'body must be valid JSON', field: null });
  }
  const status = Number.isInteger(err.status) && err.status >= 400 && err.status < 500 ? err.status : 500;
  if (status === 500) {
    log(`error: ${err.stack || err}`);
    if (req.path === '/orders' && req.method === 'POST') ordersTotal.inc({ status: 'failed' });
  }
  res.status(status).json({ error: status === 500 ? 'internal_error' : err.message, status });
});

// --- serving and shutdown ---------------------------------------------------------

const server = app.listen(config.port, config.host, (err) => {
  if (err) {
    console.error(`cannot listen on ${config.host}:${config.port}: ${err.message}`);
    process.exit(1);
  }
  const { address, port } = server.address();
  const host = address.includes(':') ? `[${address}]` : address;
  console.log(`listening http://${host}:${port}`);
  phase = 'ready';
  log(`broker ${config.ordersUrl}`);
});

function shutdown (signal) {
  if (phase === 'draining') return;
  phase = 'draining';
  log(`${signal}: draining (ready = 503), stopping in ${DRAIN_DELAY_MS} ms`);
  setTimeout(() => {
    server.close(() => {
      log('stopped');
      process.exit(0);
    });
    server.closeIdleConnections();
    setTimeout(() => {
      log(`orders still in flight after ${DRAIN_TIMEOUT_MS} ms, closing connections`);
      server.closeAllConnections();
      process.exit(0);
    }, DRAIN_TIMEOUT_MS).unref();
  }, DRAIN_DELAY_MS);
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
