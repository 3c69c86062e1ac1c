// A failed response as a ChatError ({type, message, code, status}): the status, and the
// provider's own words from its error body where the body has them.
import { headerValue } from './transport.js';

// A body that is no error JSON (a proxy's HTML page) is quoted up to this many characters.
var MAX_QUOTED = 300;

/**
 * The ChatError of connection `conn` that ended with a non-2xx status (or none). `body`:
 * {info, text}, what the core's error-body reader (src/error_body.rs) found in it, else its text.
 */
export function httpError(conn, body) {
  var status = conn.status;
  var info = body.info;
  var message = info !== null ? info.message : body.text.slice(0, MAX_QUOTED);
  var retryAfter = headerValue(conn.header, 'retry-after');
  if (message === '') message = status === 0 ? 'no response' : 'HTTP ' + status;
  if (retryAfter) message += ' (retry after ' + retryAfter + ' s)';
  var type = info !== null && info.type !== null ? info.type : 'http_error';
  if (conn.resume && (status === 404 || status === 410)) type = 'resume_failed';
  return { type: type, message: message, code: info !== null ? info.code : null, status: status };
}
