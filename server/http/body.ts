import type { IncomingMessage } from 'node:http';
import { badRequest, HttpProblem } from './http-error.js';

export type JsonObject = Record<string, unknown>;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/**
 * Reads a JSON object body of at most `limitBytes`. No body at all reads as `{}` (every field
 * of every route is optional or checked afterwards). A body must be `application/json` (415
 * otherwise), strict UTF-8 and a JSON object (400), and fit the limit (413). A body that is
 * refused unread closes the connection afterwards, so its rest is never parsed as a request.
 */
export async function readJsonObject(req: IncomingMessage, limitBytes: number): Promise<JsonObject> {
  const length = req.headers['content-length'];
  const chunked = req.headers['transfer-encoding'] !== undefined;
  if (!chunked && (length === undefined || length === '0')) return {};
  if (!isJsonMediaType(req.headers['content-type'])) {
    throw new HttpProblem(415, 'BAD_REQUEST', 'the body must be application/json', {}, true);
  }
  if (length !== undefined && Number(length) > limitBytes) {
    throw tooLarge(limitBytes);
  }
  const bytes = await readLimited(req, limitBytes);
  if (bytes.length === 0) return {};
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw badRequest('the body is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw badRequest('the body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badRequest('the body must be a JSON object');
  }
  return value as JsonObject;
}

/** `application/json`, optionally with `charset=utf-8`; any other charset is refused. */
export function isJsonMediaType(header: string | undefined): boolean {
  if (header === undefined) return false;
  const [type, ...params] = header.split(';');
  if (type?.trim().toLowerCase() !== 'application/json') return false;
  for (const p of params) {
    const [k, v] = p.split('=', 2).map((s) => s.trim().toLowerCase());
    if (k === 'charset' && v !== 'utf-8' && v !== '"utf-8"') return false;
  }
  return true;
}

function tooLarge(limitBytes: number): HttpProblem {
  return new HttpProblem(413, 'BAD_REQUEST', `the body is larger than ${limitBytes} bytes`, {}, true);
}

function readLimited(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total > limitBytes) {
        cleanup();
        // Stop reading: the reply closes the connection.
        req.pause();
        reject(tooLarge(limitBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, total));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new HttpProblem(400, 'BAD_REQUEST', `the body could not be read: ${err.message}`, {}, true));
    };
    const onClose = () => {
      cleanup();
      reject(new HttpProblem(400, 'BAD_REQUEST', 'the client went away while sending the body', {}, true));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
