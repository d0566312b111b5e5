#!/bin/sh
# Turns TLS on in a stopped (or about to be restarted) PostgreSQL cluster, with a CA and
# certificates made here, for tests/registry_postgres_tls.rs:
#   tls_setup.sh DATA_DIR CERT_DIR
# CERT_DIR gets ca.pem (the server's root), other-ca.pem (a CA that signed nothing the server
# has), client.pem + client.key (for the role tls_cert). The server's certificate names only
# DNS:localhost, so that 127.0.0.1 is a host name it does not name. pg_hba.conf gets, first:
# tls_only over TLS only, tls_cert over TLS with a client certificate, tls_scram by password
# (SCRAM, for channel binding). Run as root or as the cluster's owner; export SEALED_SESSIONS_POSTGRES_TLS_DIR=CERT_DIR.
set -eu
DATA=$1
DIR=$2
mkdir -p "$DIR"
cd "$DIR"
days=3650
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days $days \
  -subj "/CN=sealed-sessions test CA" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem -days $days \
  -subj "/CN=sealed-sessions other CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
  -days $days -extfile server.ext 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=tls_cert" 2>/dev/null
printf 'extendedKeyUsage=clientAuth\n' > client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem \
  -days $days -extfile client.ext 2>/dev/null
chmod 600 client.key
cp server.pem "$DATA/server.crt"
cp server.key "$DATA/server.key"
cp ca.pem "$DATA/root.crt"
chmod 600 "$DATA/server.key"
if [ "$(id -u)" -eq 0 ]; then
  chown postgres "$DATA/server.crt" "$DATA/server.key" "$DATA/root.crt"
  chmod a+r "$DIR" "$DIR"/*.pem "$DIR"/client.key
fi
{
  echo "ssl = on"
  echo "ssl_cert_file = 'server.crt'"
  echo "ssl_key_file = 'server.key'"
  echo "ssl_ca_file = 'root.crt'"
  echo "password_encryption = 'scram-sha-256'"
} >> "$DATA/postgresql.conf"
hba=$(cat "$DATA/pg_hba.conf")
{
  echo "hostnossl all tls_only  127.0.0.1/32 reject"
  echo "hostssl   all tls_only  127.0.0.1/32 trust"
  echo "hostnossl all tls_cert  127.0.0.1/32 reject"
  echo "hostssl   all tls_cert  127.0.0.1/32 trust clientcert=verify-full"
  echo "host      all tls_scram 127.0.0.1/32 scram-sha-256"
  echo "$hba"
} > "$DATA/pg_hba.conf"
