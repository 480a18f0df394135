// The queue page's proof-of-work solver, run as a Web Worker so the page stays responsive:
// finds a decimal nonce such that SHA-256(prefix + nonce) starts with `difficulty` zero
// bits, reporting how many hashes it has tried about ten times a second. WebCrypto where
// the page is a secure context (HTTPS, localhost); a small SHA-256 in script where
// crypto.subtle is missing (a shop served over plain HTTP), so no buyer is left stuck.
"use strict";
var BATCH = 256;

function zeroBits(bytes, difficulty) {
  var i = 0;
  for (; difficulty >= 8; difficulty -= 8, i++) if (bytes[i] !== 0) return false;
  return difficulty === 0 || bytes[i] >> (8 - difficulty) === 0;
}

// SHA-256 (FIPS 180-4) of a short byte string; the constants are derived as the standard
// defines them (fractional parts of the roots of the first primes).
var K = [], H0 = [];
(function () {
  var frac = function (x) { return (x - Math.floor(x)) * 4294967296 | 0; };
  for (var n = 2, found = 0; found < 64; n++) {
    var prime = true;
    for (var d = 2; d * d <= n; d++) if (n % d === 0) { prime = false; break; }
    if (!prime) continue;
    if (found < 8) H0[found] = frac(Math.pow(n, 1 / 2));
    K[found++] = frac(Math.pow(n, 1 / 3));
  }
})();
function rotr(x, n) { return (x >>> n) | (x << (32 - n)); }
function sha256(bytes) {
  var n = bytes.length, blocks = ((n + 8) >> 6) + 1, words = new Int32Array(blocks * 16), w = new Int32Array(64);
  for (var i = 0; i < n; i++) words[i >> 2] |= bytes[i] << (24 - (i & 3) * 8);
  words[n >> 2] |= 0x80 << (24 - (n & 3) * 8);
  words[blocks * 16 - 1] = n * 8;
  var h = H0.slice();
  for (var off = 0; off < words.length; off += 16) {
    var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (var t = 0; t < 64; t++) {
      if (t < 16) w[t] = words[off + t];
      else {
        var x = w[t - 15], y = w[t - 2];
        w[t] = (rotr(x, 7) ^ rotr(x, 18) ^ (x >>> 3)) + w[t - 16] + (rotr(y, 17) ^ rotr(y, 19) ^ (y >>> 10)) + w[t - 7] | 0;
      }
      var t1 = k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t] | 0;
      var t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c)) | 0;
      k = g; g = f; f = e; e = d + t1 | 0; d = c; c = b; b = a; a = t1 + t2 | 0;
    }
    h[0] = h[0] + a | 0; h[1] = h[1] + b | 0; h[2] = h[2] + c | 0; h[3] = h[3] + d | 0;
    h[4] = h[4] + e | 0; h[5] = h[5] + f | 0; h[6] = h[6] + g | 0; h[7] = h[7] + k | 0;
  }
  var out = new Uint8Array(32);
  for (var j = 0; j < 32; j++) out[j] = h[j >> 2] >>> (24 - (j & 3) * 8) & 255;
  return out;
}

self.onmessage = function (message) {
  var prefix = message.data.prefix, difficulty = message.data.difficulty;
  var useScript = message.data.script || !(self.crypto && self.crypto.subtle);
  var encoder = new TextEncoder(), nonce = 0, last = Date.now();
  function tried(count) {
    var now = Date.now();
    if (now - last >= 100) { last = now; self.postMessage({ tried: count }); }
  }
  if (useScript) {
    for (;; nonce++) {
      if (zeroBits(sha256(encoder.encode(prefix + nonce)), difficulty)) break;
      if ((nonce & 1023) === 0) tried(nonce);
    }
    self.postMessage({ nonce: String(nonce), tried: nonce + 1, how: "script" });
    return;
  }
  // Many digests in flight at once: WebCrypto's cost is mostly the round trip per call.
  (function batch() {
    var start = nonce, pending = [];
    for (var i = 0; i < BATCH; i++) pending.push(self.crypto.subtle.digest("SHA-256", encoder.encode(prefix + (start + i))));
    nonce += BATCH;
    Promise.all(pending).then(function (hashes) {
      for (var i = 0; i < hashes.length; i++) {
        if (zeroBits(new Uint8Array(hashes[i]), difficulty)) {
          self.postMessage({ nonce: String(start + i), tried: start + i + 1, how: "webcrypto" });
          return;
        }
      }
      tried(nonce);
      batch();
    }, function (error) { self.postMessage({ error: String(error) }); });
  })();
};
