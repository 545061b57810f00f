# shellcheck shell=bash
# Testbed PKI: a root CA (trusted by amlprobe through --ca-file), an "inspection" CA (a TLS
# inspecting firewall's CA, never passed with --ca-file), an "nva" CA (the block_page NVA's own
# CA, FortiGate-like, never passed with --ca-file either) and leaf certificates signed by them.
# EC P-256 keys: generating them takes milliseconds, so everything is made fresh on every run.

# pki_init DIR: the CAs, plus a tiny `openssl ca` database for back-dated (expired) leaves.
pki_init() {
  local dir=$1
  mkdir -p "$dir/ca-db"
  : >"$dir/ca-db/index.txt"
  echo 1000 >"$dir/ca-db/serial"
  local ca subject
  for ca in root inspection nva; do
    case "$ca" in
      root) subject="/O=amlprobe testbed/CN=amlprobe testbed root CA" ;;
      inspection) subject="/O=amlprobe testbed/CN=Contoso TLS Inspection CA" ;;
      # vnet.py's NVA_CA_CN names this CN.
      nva) subject="/O=Fortinet/OU=Certificate Authority/CN=FortiGate CA" ;;
    esac
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout "$dir/$ca-ca.key" -out "$dir/$ca-ca.pem" -days 30 -subj "$subject" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      2>/dev/null
  done
}

# pki_leaf DIR NAME ISSUER(root|inspection|nva) VALIDITY(valid|expired) SAN...
# Writes DIR/NAME.pem (leaf + issuing CA, as servers send it) and DIR/NAME.key.
pki_leaf() {
  local dir=$1 name=$2 issuer=$3 validity=$4
  shift 4
  local san="" h
  for h in "$@"; do san+="${san:+,}DNS:$h"; done
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/O=amlprobe testbed/CN=testbed $name" 2>/dev/null
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" "subjectAltName=$san" >"$dir/$name.ext"
  if [ "$validity" = expired ]; then
    # `openssl x509 -days` cannot go negative in OpenSSL 3.0; `openssl ca` takes explicit dates.
    cat >"$dir/ca-db/ca.cnf" <<CNF
[ca]
default_ca = testbed
[testbed]
database = $dir/ca-db/index.txt
serial = $dir/ca-db/serial
new_certs_dir = $dir/ca-db
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
organizationName = optional
CNF
    openssl ca -batch -notext -config "$dir/ca-db/ca.cnf" -cert "$dir/$issuer-ca.pem" \
      -keyfile "$dir/$issuer-ca.key" -in "$dir/$name.csr" -out "$dir/$name.crt" \
      -startdate 20200101000000Z -enddate 20210101000000Z -extfile "$dir/$name.ext" 2>/dev/null
  else
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/$issuer-ca.pem" -CAkey "$dir/$issuer-ca.key" \
      -CAcreateserial -days 7 -sha256 -extfile "$dir/$name.ext" -out "$dir/$name.crt" 2>/dev/null
  fi
  cat "$dir/$name.crt" "$dir/$issuer-ca.pem" >"$dir/$name.pem"
}
