// A failed response as a ChatError ({type, message, code, status}): the status, and the
// provider's own words from its error body where the body has them.
import { headerValue } from './transport.js';

/** The ChatError of connection `conn` that ended with a non-2xx status (or none); `bodyText` is its body. */
export function httpError(conn, bodyText) {
  var status = conn.status;
  var info = null;
  try {
    info = bodyText ? JSON.parse(bodyText) : null;
  } catch (e) {
    info = null;
  }
  var inner = info && typeof info === 'object' ? (info.error && typeof info.error === 'object' ? info.error : info) : null;
  var message = inner && typeof inner.message === 'string' ? inner.message : inner && typeof inner.errMsg === 'string' ? inner.errMsg : bodyText ? bodyText.slice(0, 300) : '';
  var retryAfter = headerValue(conn.header, 'retry-after');
  if (message === '') message = status === 0 ? 'no response' : 'HTTP ' + status;
  if (retryAfter) message += ' (retry after ' + retryAfter + ' s)';
  var type = inner && typeof inner.type === 'string' ? inner.type : 'http_error';
  if (conn.resume && (status === 404 || status === 410)) type = 'resume_failed';
  return { type: type, message: message, code: inner && inner.code !== undefined ? inner.code : null, status: status };
}
