/**
 * Error translation shared by the facade modules (mirrors native/common.cc, which builds the raw
 * errno errors): every facade call runs through call()/callAsync(), so callers catch the typed
 * errors of src/errors.ts instead of errno strings.
 */
import { loadNative } from './load.js';
import { translateNativeError, type NativeErrorContext } from '../errors.js';
import type { NativeBinding } from './binding.js';

/** Bad arguments (TypeError/RangeError) are caller bugs and pass through; the rest is typed. */
export function translate(e: unknown, ctx: NativeErrorContext): unknown {
  return e instanceof TypeError || e instanceof RangeError ? e : translateNativeError(e, ctx);
}

/** Runs a native call, turning its failure into a typed LvsError. */
export function call<T>(ctx: NativeErrorContext, fn: (n: NativeBinding) => T): T {
  const n = loadNative();
  try {
    return fn(n);
  } catch (e) {
    throw translate(e, ctx);
  }
}

export async function callAsync<T>(ctx: NativeErrorContext, fn: (n: NativeBinding) => Promise<T>): Promise<T> {
  const n = loadNative();
  try {
    return await fn(n);
  } catch (e) {
    throw translate(e, ctx);
  }
}
