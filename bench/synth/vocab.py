"""Words, names and code templates the generated files are made of.

Pure data, no randomness: the pools (synth.pools) sample from it with a seeded generator, so the
vocabulary can be read and changed without touching code that does work.
"""

from __future__ import annotations


def split_words(text: str) -> list[str]:
    return text.split()


# Words chosen to never form secret-looking names (no token/secret/password/key/auth): the
# generated code must contain only the near-misses we put there on purpose.
WORDS = split_words(
    """
able access account action active adapter address admin agent alias align allow amount anchor
answer apply archive array asset async attach attempt audit backend badge balance banner base
batch before begin binary bind block board body border bound branch bridge buffer build bundle
button cache calendar call canvas capture card cart catalog cell center chain change channel
chart check child choice chunk circle class clean clear click client clock clone close cloud
cluster code collect color column command comment commit common compare compile complete config
connect console constant contact container content context control convert copy count counter
cover create cursor custom cycle daemon data date debug decode default delay delete delta deploy
depth detail device dialog digest direct display document domain double draft draw driver
dynamic edge editor effect element email empty encode engine entity entry error event exact
export extend extra factor failure feature fetch field figure filter final finder first flag
float folder follow format forward frame function gateway general global graph group guard
handle handler header height helper hidden history holder hook host image import index inline
input insert install instance integer internal invoice issue item job join journal label layer
layout leader length level library limit line link list listener loader local locale lock logger
lookup loop manager manual map margin marker master match matrix member memory menu merge
message method metric middle mirror mode model module monitor mount native network node notice
number object offset option order origin output owner package page panel param parent parse
partial path pattern payload peer pending period picker pipeline pixel placeholder plugin point
policy pool popup port position post prefix preview price primary print priority process product
profile program project promise property provider proxy publish query queue quota radius random
range reader record redirect reduce region register release remote render replace reply report
request reset resolve resource response result retry return review route router rule runner
runtime sample scale schema scope screen script search section select sender sequence server
service session setting shadow shape share sheet shift signal simple single size slice slot
socket sort source space span split stack stage state static status storage store stream string
style submit suffix summary switch symbol sync table tablet target task template tenant test
text theme thread ticket timer title toggle tool topic total trace track transfer tree trigger
type unit update upload usage user util valid value vector version view viewer visit volume
wallet watch widget width window worker wrapper write writer zone
"""
)

BIN_NAMES = split_words(
    """
bash sh dash ls cp mv rm ln cat chmod chown chgrp date dd df dir du echo env expr false grep
egrep fgrep gzip gunzip zcat head hostname id kill less login mkdir mknod mktemp more mount nice
nohup ps pwd readlink rmdir sed sleep stat stty su sync tail tar tee touch tr true umount uname
uniq wc which whoami xargs yes apt apt-get apt-cache apt-config apt-key dpkg dpkg-query dpkg-deb
dpkg-split dpkg-divert curl wget openssl perl python3.11 pip3 gpgv find locate awk mawk diff cmp
patch install base64 basename dirname sort split cut join paste comm tsort fold fmt nl od pr ptx
shuf seq printf test timeout nproc numfmt sha1sum sha256sum sha512sum md5sum b2sum cksum sum
truncate tac rev column getent groups useradd userdel usermod groupadd passwd chsh chfn newgrp
runuser setpriv start-stop-daemon update-alternatives ldconfig ldd iconv locale localedef
tzselect zdump zic getconf catchsegv pldd sotruss sprof
"""
)

LIB_NAMES = split_words(
    """
c m pthread dl rt resolv nss_files nss_dns crypt util anl gcc_s stdc++ z bz2 lzma zstd lz4 ssl
crypto ffi expat sqlite3 readline ncursesw tinfo uuid blkid mount smartcols selinux pcre2-8 acl
attr cap audit systemd udev gmp nettle hogweed gnutls tasn1 p11-kit idn2 unistring psl curl
nghttp2 ssh2 rtmp gssapi_krb5 krb5 k5crypto com_err krb5support keyutils ldap lber sasl2 xml2
xslt yaml-0 jpeg png16 tiff webp freetype fontconfig harfbuzz pq mariadb gdbm db-5.3 edit
event-2.1 sodium argon2 brotlidec brotlienc brotlicommon icuuc icui18n icudata
"""
)

PY_PACKAGES = split_words(
    """
requests urllib3 certifi idna charset_normalizer yaml jinja2 markupsafe click flask werkzeug
itsdangerous sqlalchemy alembic psycopg2 redis celery kombu billiard vine amqp pytz dateutil six
attr attrs pydantic pydantic_core typing_extensions botocore boto3 s3transfer jmespath numpy
pandas google protobuf grpc cryptography cffi pycparser gunicorn uvicorn starlette fastapi anyio
sniffio h11 httpx httpcore rich pygments tqdm packaging setuptools pip wheel lxml pillow
"""
)

NODE_PACKAGES = split_words(
    """
react react-dom lodash express debug ms qs body-parser axios moment chalk commander semver uuid
@babel/core @babel/parser @babel/traverse @babel/types @babel/generator @types/node typescript
webpack webpack-cli terser acorn ajv ansi-styles supports-color has-flag color-convert color-
name escape-string-regexp js-tokens loose-envify object-assign scheduler prop-types react-is
mime mime-types mime-db send serve-static finalize-handler cookie cookie-signature path-to-
regexp accepts negotiator content-type content-disposition etag fresh range-parser vary on-
finished ee-first statuses http-errors inherits setprototypeof toidentifier depd destroy
encodeurl escape-html merge-descriptors methods utils-merge parseurl proxy-addr forwarded
ipaddr.js raw-body iconv-lite safer-buffer bytes type-is media-typer rxjs tslib zone.js
@angular/core @angular/common yargs yargs-parser cliui wrap-ansi string-width strip-ansi ansi-
regex emoji-regex glob minimatch brace-expansion balanced-match once wrappy
"""
)

DEB_PACKAGES = split_words(
    """
base-files base-passwd bash bsdutils coreutils dash debconf debian-archive-keyring debianutils
diffutils dpkg e2fsprogs findutils gcc-12-base gpgv grep gzip hostname init-system-helpers
libacl1 libapt-pkg6.0 libattr1 libaudit1 libblkid1 libbz2-1.0 libc-bin libc6 libcap-ng0 libcap2
libcom-err2 libcrypt1 libdb5.3 libdebconfclient0 libext2fs2 libffi8 libgcc-s1 libgcrypt20
libgmp10 libgnutls30 libgpg-error0 libhogweed6 libidn2-0 liblz4-1 liblzma5 libmd0 libmount1
libnettle8 libp11-kit0 libpam-modules libpam-runtime libpam0g libpcre2-8-0 libseccomp2
libselinux1 libsemanage2 libsepol2 libsmartcols1 libss2 libssl3 libstdc++6 libsystemd0
libtasn1-6 libtinfo6 libudev1 libunistring2 libuuid1 libxxhash0 libzstd1 login logsave mawk
mount ncurses-base ncurses-bin passwd perl-base sed sysvinit-utils tar tzdata usr-is-merged
util-linux zlib1g ca-certificates curl libcurl4 libpq5 openssl libsqlite3-0 libexpat1
libreadline8 readline-common netbase libkrb5-3 libgssapi-krb5-2 libldap-2.5-0 libsasl2-2
libnghttp2-14 libpsl5 librtmp1 libssh2-1 libbrotli1 libjpeg62-turbo libpng16-16
"""
)


# Code templates: their str.format fields are filled from the pools (identifiers, class names,
# sentences), which makes thousands of distinct but plausible snippets from a few shapes.
PY_TEMPLATES = [
    'def {f}({a}, {b}=None):\n    """{S}"""\n    if {a} is None:\n        raise ValueError("{s}")\n'
    "    {c} = {b} or {{}}\n    for {d} in {a}:\n        {c}[{d}] = {g}({d}, {n})\n    return {c}\n\n\n",
    'class {C}({C2}):\n    """{S}"""\n\n    {x} = {n}\n\n    def __init__(self, {a}, {b}={n2}):\n'
    "        super().__init__()\n        self.{a} = {a}\n        self._{b} = {b}\n\n"
    '    def {f}(self) -> "{C}":\n        return self.{a}.{g}(self._{b})\n\n'
    '    def __repr__(self) -> str:\n        return f"{C}({{self.{a}!r}})"\n\n\n',
    '{X} = {n}\n{Y} = "{w}"\n',
    'def {f}(self, {a}: int, *, {b}: str = "{w}") -> bool:\n    # {s}\n    try:\n        {c} = self._{g}[{a}]\n'
    '    except KeyError:\n        logger.debug("{s} %s", {a})\n        return False\n    return {c}.{h}({b})\n\n\n',
    "@property\ndef {f}(self):\n    return self._{a}\n\n\n",
    "if {a} > {n}:\n    {b} = [{c} for {c} in {d} if {c}.{f}()]\nelse:\n    {b} = []\n",
    "async def {f}({a}, {b}):\n    async with {a}.{g}() as {c}:\n        await {c}.{h}({b}, timeout={n2})\n\n\n",
]

JS_TEMPLATES = [
    "function {f}({a}, {b}) {{\n  if (!{a}) {{\n    return null;\n  }}\n  const {c} = {a}.{p} || {b};\n"
    "  return {c}.map(({d}) => {d} * {n});\n}}\n\n",
    "module.exports.{f} = {f};\n",
    'const {v} = require("{m}");\n',
    "class {C} extends {C2} {{\n  constructor({a}) {{\n    super();\n    this.{p} = {a};\n  }}\n\n"
    "  {f}() {{\n    return this.{p}.{g}({n});\n  }}\n}}\n\n",
    "/**\n * {S}\n * @param {{string}} {a}\n * @returns {{boolean}}\n */\n",
    "{C}.prototype.{f} = function ({a}) {{\n  this._{p} = {a};\n  return this;\n}};\n\n",
    "exports.{f} = async function {f}({a}) {{\n  const {b} = await {a}.{g}();\n  return {b}.{p};\n}};\n\n",
]

JS_MIN_TEMPLATES = [
    "function {f}({a},{b}){{if(!{a})return null;var {c}={a}.{p}||{b};return {c}.map(function({d}){{return {d}*{n}}})}}",
    'var {o}={{{p}:"{w}",{p2}:{n},{p3}:[{n},{n2},{n3}]}};',
    "{o}.prototype.{p}=function({a}){{this._{p2}={a};return this}};",
    "case {n}:return {a}.{p}({b});",
    '"string"==typeof {a}&&({b}={a}.split("{w}"));',
    "for(var {a}=0;{a}<{b}.length;{a}++){c}.push({b}[{a}]);",
    '{o}.{p}=function({a},{b}){{return new Error("{s}: "+{a}+" "+{b})}};',
    "{a}=Object.assign({{}},{b},{{{p}:!0,{p2}:{n2}}});",
]
