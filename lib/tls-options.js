'use strict';
// The built-in TLS settings: a self-signed certificate for localhost (valid until 2126)
// so that STARTTLS and implicit TLS work out of the box in development and tests.
// Its private key is public: never use it in production.
//   const tlsOptions = require('smtp-server-rs/lib/tls-options');
//   tlsOptions({ minVersion: 'TLSv1.2' }) -> the defaults with the given options on top
const crypto = require('node:crypto');

const DEFAULT_KEY = `-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDQUbHAFJjcrF0k
O8LAeQEAjf3KXbce49toTxP34naCR+p4lKSBc+/UU+XsqrYZJOcL1xZ1pg9wna6t
m7j+fKs4yQQpLUt3isfI01ilbfns1Hg7LGqGeM18UXnPv6U9zn/+oTQEbudjZVVf
LWrEflkEw7v6S/rX6bUkqYUu8M25pqA3QM1L4rA5zxQoo+bn7gev1KoLdGW0DroQ
BeUqIy4s4IHcztZqRMA6LWGqqH1sI91Kl6T4YtpSw4kt2WpuFEXLyls6alV/wPgv
rmQgLMK2nYOG7Yr8B/f3itlKLzJoitjO1TYpNctbGhQfitOm6PIExSbACwW9DhNv
crD490StAgMBAAECggEALJxaDtK6W4Nz3McJcTNYghhmMXh5Nx2/hiptEcgG7eZd
sV3PjsNXqCYhVlnGbkMHUXNJpX8ezlSOLDJtXt4uwpXVlMXU4/At0XVlBeQzwcJM
Twu3cj2bb5R5HAKj7cTzhwFZhNuFJLV2H1A4DYUrJgiOkE7GFIfBWW0ODtvVinxf
12DRS+RC3tROaNPup85sU+LxaEsAWAj7g7/NcPAJs4ifCS1HVyu0X6AH6NylThFG
cXa2OvobN9Nu2D66/af9U/uFq86sr3LiYMuztZMgNQzpVoNSaAGiIyBWchqB+gcE
FG3GhF5uhGIrynUqBmaOOZpBKdczUXZLHoqy10qWYQKBgQDv2i3HRtrOwapemfcs
0Y7uODU3upHFJPlG47V5y+1SZyflaO/mitLLWlwDUpd0Bur+iDeqyVfqQYk6OhaW
Y/AmADRehFRns1Qi5j/5ub0igCHhmKDIIGqBt12RNsnRMYHzZVyonriUkYYC5Rf5
9bpxEnp7eUx6LWxQlHObbJOUEQKBgQDeWAvMB0hPu6rf8kgCxcFHJ50pPTkvrN/G
ic0nyBbbE/DWR47sb3SEwF0HPw61PNztaU/B+K3aAZ661X03m+BE0xOSb0AesyRk
o0GpbRHO9e+Sp9U2cZAEDwu8R5VsqREoQZu9hUqbanxg5HsRcZ7ITSrjh3S2eDDC
FU5srPNS3QKBgF/NdNWQ/prxDhzlQK5dMcsDFnahBdKJ9yuSjo0MoEl2vJ/Mb25V
aucgu3n0Rlxo2vo57IpCC+ScsrRYOWdumaCEGmbaUmBtZ6Dc+RbFUr9yEJZsgWQO
VpxjYnM7QBdXwAE5Lm6Hn1BwY+fKG+6ScRry94tUIvD2Lbpt4VNmZfgRAoGAaoyq
6pU60+rNEhCa7aky3BRhvhd2xiAEBLKYu82pFkdSDH2yQh+PKOa+LfDL7ZJDFQp4
jC3NskFAfaw9G175dEHqiSwDADM853VMzBJWjGVS72a6SCLXrvo+13U+aBoE/NOj
/IhZnmzDOfOD/nICc153hR2ukpq6Uue+81lWKYkCgYEAlxPYz+lXR/0hOGEuxSvb
oC9l8LPGayHtaIkRNh95N6ZFiCtw72IwzEXjIwd0UUVkVN5nyvH2zpeYtvVhg/bn
PlDxPYxdzPeA1QHroQV8yQ/46XHKrkhCp9ar3vNWZROPPOaLEWzjMcwp0B5RVTvq
C7sgG1pxOhEvdW51k//cOao=
-----END PRIVATE KEY-----`;

const DEFAULT_CERT = `-----BEGIN CERTIFICATE-----
MIIDOjCCAiKgAwIBAgIUdtWpm9LEJTc+Sy5AE/x3G48jHbwwDQYJKoZIhvcNAQEL
BQAwFDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMzAzNTkwNFoYDzIxMjYx
MDMwMDM1OTA0WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwggEiMA0GCSqGSIb3DQEB
AQUAA4IBDwAwggEKAoIBAQDQUbHAFJjcrF0kO8LAeQEAjf3KXbce49toTxP34naC
R+p4lKSBc+/UU+XsqrYZJOcL1xZ1pg9wna6tm7j+fKs4yQQpLUt3isfI01ilbfns
1Hg7LGqGeM18UXnPv6U9zn/+oTQEbudjZVVfLWrEflkEw7v6S/rX6bUkqYUu8M25
pqA3QM1L4rA5zxQoo+bn7gev1KoLdGW0DroQBeUqIy4s4IHcztZqRMA6LWGqqH1s
I91Kl6T4YtpSw4kt2WpuFEXLyls6alV/wPgvrmQgLMK2nYOG7Yr8B/f3itlKLzJo
itjO1TYpNctbGhQfitOm6PIExSbACwW9DhNvcrD490StAgMBAAGjgYEwfzAdBgNV
HQ4EFgQUI90Z0tccqXXw9dgefu0IYbL9k9IwHwYDVR0jBBgwFoAUI90Z0tccqXXw
9dgefu0IYbL9k9IwDwYDVR0TAQH/BAUwAwEB/zAsBgNVHREEJTAjgglsb2NhbGhv
c3SHBH8AAAGHEAAAAAAAAAAAAAAAAAAAAAEwDQYJKoZIhvcNAQELBQADggEBAEv/
4Tz7j8N/gjgjNY9yJCIJnfBWXS1LvyCzcCwq1wDYC8KNVZMJy3QBGQW1vpEX3Hqp
trPo4MCJ7/gf7kqEiGXjPDnGsv4Nc5qW7bJeHrU+UCLVlxjeYLiX49lL8eyjRRjg
cmbH5exSfNrVWspRqDxDszyKqcgjo8epgMSLzaDkx38zB0CAx2rgsTQ8YHoRt09b
Ol3LSVMzj06PSLPK0WVtCnJRuAeYBPqymOlpKhIFeEL1yBPZ8yeFiepwiqPJi4xm
S0oAf35sppCAV742krV7BpFcWU8CcYqkm7JEwiGvsm/LYwTRt79R8yYSLTsekrxv
0Ml+nGQLCqdJBMttZrc=
-----END CERTIFICATE-----`;

const defaults = {
  key: DEFAULT_KEY,
  cert: DEFAULT_CERT,
  honorCipherOrder: true,
  requestOCSP: false,
  sessionIdContext: crypto.createHash('sha1').update(process.argv.join(' ')).digest('hex').slice(0, 32),
  minVersion: 'TLSv1'
};

/** The built-in TLS options with `opts` on top. */
function tlsOptions(opts) {
  return Object.assign({}, defaults, opts || {});
}

module.exports = tlsOptions;
module.exports.default = tlsOptions;
module.exports.DEFAULT_KEY = DEFAULT_KEY;
module.exports.DEFAULT_CERT = DEFAULT_CERT;
