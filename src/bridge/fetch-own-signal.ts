/**
 * The SDK's HTTP client transport passes one connection-wide AbortSignal to every fetch, and Node's
 * fetch adds a listener to it per request that only garbage collection removes: over thousands of
 * calls the listeners pile up (MaxListenersExceededWarning at 1500) and every call pays for the pile.
 * Each POST gets a signal of its own here, linked to the shared one only while the request is sent.
 * The long-lived GET stream keeps the shared signal, so closing the client still ends it.
 */
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';

export const fetchWithOwnSignal: FetchLike = async (url, init) => {
  const shared = init?.signal;
  if (!shared || init?.method !== 'POST') return fetch(url, init);
  const own = new AbortController();
  const forward = () => own.abort(shared.reason);
  if (shared.aborted) forward();
  else shared.addEventListener('abort', forward, { once: true });
  try {
    return await fetch(url, { ...init, signal: own.signal });
  } finally {
    shared.removeEventListener('abort', forward);
  }
};
