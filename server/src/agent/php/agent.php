<?php
/*
 * Mudmap agent for pfSense, protocol version 1
 * ============================================
 *
 * What it is
 *   The on-device end of Mudmap's agent protocol (docs/agent-protocol.md). The Mudmap server starts
 *   it over an SSH exec channel and exchanges newline-delimited JSON with it. It reads the firewall
 *   through pfSense's own PHP API in /etc/inc (config.inc, pfsense-utils.inc, gwlb.inc,
 *   service-utils.inc), so it reports what the pfSense GUI shows. The methods are exactly those of
 *   the device simulator (server/src/sim/agent.rs): `hello`, `status`, `config.get`,
 *   `dhcp.leases`, `arp.table` and `packages.list` read; `access.ensure` and `access.remove` add or
 *   remove the device's Mudmap line in the admin (uid 0) user's authorized keys, and
 *   `account.remove` removes the `mudmap` service account of agents before 1.2.0, all through
 *   pfSense's user API (auth.inc) and write_config(), each checked after the write;
 *   `service.control` starts, stops or restarts a service; `diag.reboot` and `diag.shutdown`
 *   answer first and then reboot or halt the firewall (see "Actions after the answer").
 *   Configuration changes belong to later protocol versions. Every method but `hello` refuses
 *   with `not_root` unless the agent runs as root (effective uid 0).
 *
 * How it is invoked (pfSense CE 2.6+ and Plus; started as root)
 *   Mudmap logs in as root with its device key, which sits in the admin account's authorized keys
 *   (root's /root/.ssh/authorized_keys, written by pfSense) behind the forced command DISPATCHER:
 *   /usr/local/bin/php /usr/local/share/mudmap/agent.php serve   answer requests until stdin closes
 *   /usr/local/bin/php /usr/local/share/mudmap/agent.php call    answer exactly one request, exit
 *   Requests are answered one at a time, in the order they arrive.
 *
 * PHP version
 *   pfSense CE 2.6 runs PHP 7.4 (2.7 runs 8.1/8.2, Plus 8.x). This file therefore uses no syntax or
 *   function newer than PHP 7.4: no match, union or mixed types, constructor promotion, readonly,
 *   first-class callables, str_contains() and the like.
 *
 * Exit status
 *   0  end of input (serve), or the response was written (call)
 *   2  call: the input was not a request (malformed or oversized line, or no complete line)
 *   3  the agent cannot start: bad arguments, or the pfSense PHP environment is missing or broken
 *   1  pfSense code ended the process (exit() or a fatal PHP error) while a request was being
 *      handled; that request was answered with `internal` first. (Not listed in the protocol doc.)
 *
 * Actions after the answer
 *   A method whose effect would cut the connection (diag.reboot, diag.shutdown) checks that it can
 *   act, returns its result normally and leaves the act in Runtime::$afterResponse. serve() and
 *   call() run it once the response line is written and flushed, so the client always has the
 *   answer first. If the line cannot be written (stdout gone), the act is dropped, not carried out.
 *
 * Output discipline
 *   stdout carries whole protocol lines only, written with fwrite(STDOUT). Whatever else PHP or
 *   pfSense code prints (echo, warnings, notices, fatal errors) is diverted to stderr, which the
 *   server logs as diagnostics.
 *
 * MUDMAP_AGENT_ROOT
 *   A test hook. When set, every absolute path the agent uses (/etc/inc, /cf/conf/config.xml and the
 *   root file system for the disk figures) is taken under that directory, so the tests can run the
 *   agent against a stub pfSense tree (server/tests/fixtures/pfsense-root). On a firewall it is
 *   unset (sshd passes no such variable to the forced command) and the paths are the real ones.
 *   Only then, MUDMAP_AGENT_EUID may set the effective uid the agent believes it runs as, so the
 *   tests can exercise `not_root`; on a firewall it is ignored.
 */

namespace Mudmap\Agent;

const AGENT_VERSION = '1.2.0';
const PROTOCOL_VERSION = 1;
/** Method name => the function in this file that answers it; the names are hello's capabilities. */
const METHODS = [
    'hello' => 'hello',
    'status' => 'status',
    'config.get' => 'config_get',
    'access.ensure' => 'access_ensure',
    'access.remove' => 'access_remove',
    'account.remove' => 'account_remove',
    'service.control' => 'service_control',
    'dhcp.leases' => 'dhcp_leases',
    'arp.table' => 'arp_table',
    'packages.list' => 'packages_list',
    'diag.reboot' => 'diag_reboot',
    'diag.shutdown' => 'diag_shutdown',
];

/**
 * The forced command of Mudmap's line in the admin account's authorized keys, byte for byte the
 * server's FORCED_COMMAND (server/src/activation/remote.rs): it starts this agent in serve mode or,
 * for `mudmap-install-agent`, replaces the agent file from standard input (self-heal).
 */
const DISPATCHER = <<<'SH'
/bin/sh -c 'case $SSH_ORIGINAL_COMMAND in mudmap-install-agent) umask 022 && /bin/mkdir -p /usr/local/share/mudmap && /bin/cat > /usr/local/share/mudmap/agent.php.new && /bin/mv -f /usr/local/share/mudmap/agent.php.new /usr/local/share/mudmap/agent.php;; *) test -f /usr/local/share/mudmap/agent.php || exit 127; exec /usr/local/bin/php /usr/local/share/mudmap/agent.php serve;; esac'
SH;
/** The options that follow the forced command in Mudmap's line, in this order. */
const KEY_OPTIONS = ',no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding';
/** The start of an ed25519 public key blob: the type name and the key length, each length-prefixed. */
const ED25519_BLOB_PREFIX = "\0\0\0\x0bssh-ed25519\0\0\0\x20";

/** The service account that agents before 1.2.0 created; account.remove removes only it. */
const LEGACY_USER = 'mudmap';
const LEGACY_USER_DESCR = 'Mudmap service account: its SSH key can only run the Mudmap agent';
/** Where the agent is installed (access.remove with "agent": true deletes it). */
const AGENT_DIR = '/usr/local/share/mudmap';
/** The file sshd reads for root, which pfSense's local_user_set() writes for the uid-0 user. */
const ROOT_AUTHORIZED_KEYS = '/root/.ssh/authorized_keys';

/** Largest request or response line in bytes, newline excluded (16 MiB). */
const MAX_FRAME = 16 * 1024 * 1024;
/** Bytes taken from stdin per read; longer lines are assembled from several reads. */
const READ_CHUNK = 65536;

/** The file whose exact bytes `config.get` returns and whose SHA-256 is the config hash. */
const CONFIG_XML = '/cf/conf/config.xml';
/** pfSense's PHP library. config.inc is required; the others only feed `status`. */
const PFSENSE_INC = '/etc/inc';
const STATUS_INCLUDES = ['interfaces.inc', 'pfsense-utils.inc', 'gwlb.inc', 'service-utils.inc'];

/** CPU usage is measured over the time since the previous `status` on this process when that is
 *  at least CPU_MIN_WINDOW seconds, otherwise over a fresh sample of CPU_SAMPLE_USEC. */
const CPU_MIN_WINDOW = 1.0;
const CPU_SAMPLE_USEC = 250000;

/** diag.reboot and diag.shutdown act this long after their answer is written (microseconds). */
const POWER_DELAY_USEC = 1000000;
/** FreeBSD's arp(8), run when pfSense's system_get_arp_table() is missing. */
const ARP_BINARY = '/usr/sbin/arp';

const JSON_FLAGS = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION
    | JSON_INVALID_UTF8_SUBSTITUTE;

const EXIT_OK = 0;
const EXIT_DIED = 1;
const EXIT_BAD_INPUT = 2;
const EXIT_CANNOT_START = 3;

/** Process-wide state, including what the shutdown handler needs when PHP stops early. */
final class Runtime
{
    /** '' on a firewall; the MUDMAP_AGENT_ROOT directory in tests. */
    public static string $root = '';
    /** 'serve' or 'call'; kept here because pfSense's includes share the global variables. */
    public static string $mode = '';
    /** Set once the pfSense environment is loaded. */
    public static bool $started = false;
    /** [id token, method] of the request being handled, if any. */
    public static ?array $current = null;
    /** Set when the agent exits on its own terms. */
    public static bool $finished = false;
    /** What the request just answered does once its response line is out (diag.reboot...). */
    public static ?\Closure $afterResponse = null;
}

/** A request that failed with a protocol error code. */
final class Failure extends \RuntimeException
{
    /** @var string */
    public $errorCode;

    public function __construct(string $errorCode, string $message)
    {
        parent::__construct($message);
        $this->errorCode = $errorCode;
    }
}

/** A line that is not a valid request; `id` is what could be salvaged from it. */
final class BadRequest extends \RuntimeException
{
    /** @var string|null */
    public $id;

    public function __construct(?string $id, string $message)
    {
        parent::__construct("not a valid request: {$message}");
        $this->id = $id;
    }
}

/** A request as the server's `Request` type defines it; `id` is kept as its JSON integer token. */
final class Request
{
    /** @var string */
    public $id;
    /** @var int */
    public $v;
    /** @var string */
    public $method;
    /** @var mixed decoded JSON: objects as stdClass */
    public $params;

    public function __construct(string $id, int $v, string $method, $params)
    {
        $this->id = $id;
        $this->v = $v;
        $this->method = $method;
        $this->params = $params;
    }
}

/** Splits stdin into lines, enforcing MAX_FRAME. */
final class LineReader
{
    /** True while skipping the rest of a line already answered with `frame_too_large`. */
    private bool $discarding = false;

    /** @var resource */
    private $stream;

    /** @param resource $stream */
    public function __construct($stream)
    {
        $this->stream = $stream;
    }

    /**
     * The next line without its newline; false as soon as a line grows past MAX_FRAME (the rest of
     * it is skipped); null at end of input. A final line without a newline is not a message: it is
     * dropped with a diagnostic.
     *
     * @return string|false|null
     */
    public function next()
    {
        $line = '';
        while (($chunk = fgets($this->stream, READ_CHUNK)) !== false) {
            $complete = substr($chunk, -1) === "\n";
            if ($this->discarding) {
                $this->discarding = !$complete;
                continue;
            }
            $line .= $chunk;
            if ($complete) {
                return strlen($line) - 1 > MAX_FRAME ? false : substr($line, 0, -1);
            }
            if (strlen($line) > MAX_FRAME) {
                $this->discarding = true;
                return false;
            }
        }
        if ($line !== '') {
            diag('input ended in the middle of a line; that partial line was dropped');
        }
        return null;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Process set-up, output and diagnostics
 * ------------------------------------------------------------------------------------------- */

function set_up_process(): void
{
    ini_set('display_errors', 'stderr');
    ini_set('html_errors', '0');
    // Floats in JSON as they are (12.5, not 12.4999999999999996).
    ini_set('serialize_precision', '-1');
    set_error_handler(__NAMESPACE__ . '\\report_php_error');
    // Everything printed through PHP's output layer (echo, print, die("...")) goes to stderr. The
    // buffer cannot be removed by pfSense code; protocol lines bypass it via fwrite(STDOUT).
    ob_start(
        static function (string $buffer): string {
            if ($buffer !== '') {
                @fwrite(STDERR, $buffer);
            }
            return '';
        },
        1,
        PHP_OUTPUT_HANDLER_CLEANABLE | PHP_OUTPUT_HANDLER_FLUSHABLE
    );
    register_shutdown_function(__NAMESPACE__ . '\\on_shutdown');
}

/** PHP warnings and notices go to stderr, each distinct one once per process. */
function report_php_error(int $level, string $message, string $file = '', int $line = 0): bool
{
    static $seen = [];
    if ((error_reporting() & $level) === 0) {
        return true; // silenced with @ by the caller
    }
    $key = "{$level}:{$file}:{$line}";
    if (!isset($seen[$key])) {
        $seen[$key] = true;
        diag("PHP error {$level}: {$message} at {$file}:{$line}");
    }
    return true;
}

function diag(string $message): void
{
    @fwrite(STDERR, "mudmap-agent: {$message}\n");
}

function diag_once(string $message): void
{
    static $said = [];
    if (!isset($said[$message])) {
        $said[$message] = true;
        diag($message);
    }
}

/** Runs last, also after exit() or a fatal error inside pfSense code. */
function on_shutdown(): void
{
    if (Runtime::$finished) {
        return;
    }
    $error = error_get_last();
    $why = $error === null ? 'exit() was called' : "{$error['message']} at {$error['file']}:{$error['line']}";
    if (!Runtime::$started) {
        diag("cannot start: loading the pfSense PHP environment stopped the process ({$why})");
        exit(EXIT_CANNOT_START);
    }
    if (Runtime::$current !== null) {
        [$id, $method] = Runtime::$current;
        write_line(failure_line($id, 'internal', "the agent stopped while handling {$method}: {$why}"));
        diag("stopped while handling {$method}: {$why}");
        exit(EXIT_DIED);
    }
}

function finish(int $status): void
{
    Runtime::$finished = true;
    exit($status);
}

function cannot_start(string $why): void
{
    diag("cannot start: {$why}");
    finish(EXIT_CANNOT_START);
}

/** Write one whole line to stdout; false when stdout is gone. */
function write_line(string $line): bool
{
    for ($written = 0, $length = strlen($line); $written < $length; $written += $n) {
        $n = @fwrite(STDOUT, $written === 0 ? $line : substr($line, $written));
        if ($n === false || $n === 0) {
            return false;
        }
    }
    return fflush(STDOUT);
}

/** A response line. `$id` is the request id as a JSON integer token, or null. */
function response_line(?string $id, array $body): string
{
    $json = json_encode($body, JSON_FLAGS);
    if ($json === false) {
        return failure_line($id, 'internal', 'the response could not be encoded: ' . json_last_error_msg());
    }
    // The id is spliced in as a token so ids above PHP_INT_MAX survive unchanged.
    $line = '{"id":' . ($id ?? 'null') . ',' . substr($json, 1) . "\n";
    if (strlen($line) - 1 > MAX_FRAME) {
        return failure_line(
            $id,
            'frame_too_large',
            sprintf('the response would be %d bytes, over the 16 MiB limit', strlen($line) - 1)
        );
    }
    return $line;
}

function success_line(string $id, array $result): string
{
    return response_line($id, ['ok' => true, 'result' => $result]);
}

function failure_line(?string $id, string $code, string $message): string
{
    return response_line($id, ['ok' => false, 'error' => ['code' => $code, 'message' => $message]]);
}

/* ---------------------------------------------------------------------------------------------
 * Modes and requests
 * ------------------------------------------------------------------------------------------- */

/** @param resource $input */
function serve($input): int
{
    $reader = new LineReader($input);
    while (($line = $reader->next()) !== null) {
        $response = $line === false ? too_large_line() : handle_line($line)[0];
        $written = write_line($response);
        after_response($written);
        if (!$written) {
            diag('stdout is closed; stopping');
            break;
        }
    }
    return EXIT_OK;
}

/** @param resource $input */
function call($input): int
{
    $line = (new LineReader($input))->next();
    if ($line === null) {
        diag('call: the input ended before a complete request line');
        return EXIT_BAD_INPUT;
    }
    [$response, $was_request] = $line === false ? [too_large_line(), false] : handle_line($line);
    after_response(write_line($response));
    return $was_request ? EXIT_OK : EXIT_BAD_INPUT;
}

/** Run what the request just answered left to do after its answer, if the answer went out. */
function after_response(bool $answered): void
{
    $act = Runtime::$afterResponse;
    Runtime::$afterResponse = null;
    if ($act === null) {
        return;
    }
    if (!$answered) {
        diag('the answer could not be written, so its action was not carried out');
        return;
    }
    try {
        $act();
    } catch (\Throwable $e) {
        diag("the action after the answer failed: {$e->getMessage()}");
    }
}

function too_large_line(): string
{
    return failure_line(null, 'frame_too_large', 'the request line exceeds 16 MiB and was dropped');
}

/** @return array{0: string, 1: bool} the response line, and whether the line was a valid request */
function handle_line(string $line): array
{
    try {
        $request = parse_request($line);
    } catch (BadRequest $e) {
        return [failure_line($e->id, 'bad_request', $e->getMessage()), false];
    }
    return [dispatch($request), true];
}

/** Validates a line the way the server's serde types do: `v` u32, `id` u64, `method` string. */
function parse_request(string $line): Request
{
    $data = json_decode($line, false, 512, JSON_BIGINT_AS_STRING);
    if (json_last_error() !== JSON_ERROR_NONE) {
        throw new BadRequest(null, json_last_error_msg());
    }
    if (!$data instanceof \stdClass) {
        throw new BadRequest(null, 'expected a JSON object');
    }
    $id = property_exists($data, 'id') ? u64_token($data->id, $line) : null;
    foreach (['v', 'id', 'method'] as $field) {
        if (!property_exists($data, $field)) {
            throw new BadRequest($id, "missing field `{$field}`");
        }
    }
    if ($id === null) {
        throw new BadRequest(null, '`id` must be an unsigned 64-bit integer');
    }
    if (!is_int($data->v) || $data->v < 0 || $data->v > 0xFFFFFFFF) {
        throw new BadRequest($id, '`v` must be an unsigned 32-bit integer');
    }
    if (!is_string($data->method)) {
        throw new BadRequest($id, '`method` must be a string');
    }
    return new Request($id, $data->v, $data->method, $data->params ?? null);
}

/**
 * The JSON token of an unsigned 64-bit integer, or null when the value is not one.
 *
 * @param mixed $value
 */
function u64_token($value, string $line): ?string
{
    if (is_int($value)) {
        return $value >= 0 ? (string) $value : null;
    }
    // Integers above PHP_INT_MAX were decoded as digit strings. A JSON string of digits looks the
    // same, so decode once more without JSON_BIGINT_AS_STRING: a number then comes back as a float.
    if (is_string($value) && preg_match('/^[1-9][0-9]{18,19}$/', $value) === 1
        && (strlen($value) === 19 || strcmp($value, '18446744073709551615') <= 0)) {
        $plain = json_decode($line);
        if ($plain instanceof \stdClass && is_float($plain->id ?? null)) {
            return $value;
        }
    }
    return null;
}

function dispatch(Request $request): string
{
    if ($request->v !== PROTOCOL_VERSION) {
        return failure_line(
            $request->id,
            'unsupported_version',
            sprintf('this agent speaks protocol %d, not %d', PROTOCOL_VERSION, $request->v)
        );
    }
    if (!isset(METHODS[$request->method])) {
        return failure_line(
            $request->id,
            'unknown_method',
            sprintf(
                'unknown method %s; this agent implements %s',
                json_encode($request->method, JSON_FLAGS),
                implode(', ', array_keys(METHODS))
            )
        );
    }
    Runtime::$current = [$request->id, $request->method];
    try {
        if ($request->method !== 'hello' && ($euid = effective_uid()) !== 0) {
            throw new Failure(
                'not_root',
                "the Mudmap agent runs as uid {$euid}, not root: Mudmap's key on this firewall has no root access; "
                . 're-activate the device in Mudmap'
            );
        }
        $method = __NAMESPACE__ . '\\' . METHODS[$request->method];
        return success_line($request->id, $method($request->params));
    } catch (Failure $e) {
        Runtime::$afterResponse = null; // a failed request does not act
        return failure_line($request->id, $e->errorCode, $e->getMessage());
    } catch (\Throwable $e) {
        Runtime::$afterResponse = null;
        diag("{$request->method} failed: {$e}");
        return failure_line($request->id, 'internal', "{$request->method} failed: {$e->getMessage()}");
    } finally {
        Runtime::$current = null;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Methods
 * ------------------------------------------------------------------------------------------- */

/** @param mixed $params */
function hello($params): array
{
    // As the simulator: `protocols` defaults to [1]; entries that are not u64 are ignored.
    $offered = [PROTOCOL_VERSION];
    if ($params instanceof \stdClass && is_array($params->protocols ?? null)) {
        $offered = array_values(array_filter($params->protocols, function ($p) {
            return is_int($p) && $p >= 0;
        }));
    }
    if (!in_array(PROTOCOL_VERSION, $offered, true)) {
        throw new Failure('unsupported_version', sprintf(
            'client offers protocols %s; this agent speaks %d',
            json_encode($offered),
            PROTOCOL_VERSION
        ));
    }
    refresh_config();
    $version = product_version();
    return [
        'agent_version' => AGENT_VERSION,
        'protocol' => PROTOCOL_VERSION,
        'hostname' => fqdn(),
        'pfsense' => ['version' => $version, 'edition' => edition($version)],
        'platform' => 'pfSense',
        'capabilities' => array_keys(METHODS),
        'euid' => effective_uid(),
    ];
}

/**
 * The effective uid the agent runs as. Under MUDMAP_AGENT_ROOT (the tests' stub pfSense) only,
 * MUDMAP_AGENT_EUID stands in for it.
 */
function effective_uid(): int
{
    if (Runtime::$root !== '') {
        $override = getenv('MUDMAP_AGENT_EUID');
        if (is_string($override) && ctype_digit($override)) {
            return (int) $override;
        }
    }
    if (function_exists('posix_geteuid')) {
        return posix_geteuid();
    }
    $id = trim((string) @shell_exec('/usr/bin/id -u 2>/dev/null'));
    return ctype_digit($id) ? (int) $id : getmyuid();
}

/**
 * Live figures. A section that cannot be read is null or [] and listed in `errors` with its cause,
 * never invented (agent 1.2.0 on).
 *
 * @param mixed $params ignored
 */
function status($params): array
{
    refresh_config();
    $errors = [];
    $sysctl_error = null;
    try {
        $sysctl = sysctls([
            'kern.boottime', 'kern.cp_time', 'kern.smp.cpus', 'hw.ncpu', 'hw.pagesize',
            'vm.stats.vm.v_page_count', 'vm.stats.vm.v_inactive_count',
            'vm.stats.vm.v_laundry_count', 'vm.stats.vm.v_free_count',
        ]);
    } catch (\Throwable $e) {
        $sysctl = null;
        $sysctl_error = $e->getMessage();
    }
    $from_sysctl = function (callable $read) use ($sysctl, $sysctl_error) {
        if ($sysctl === null) {
            throw new \RuntimeException($sysctl_error);
        }
        return $read($sysctl);
    };
    $uptime = section($errors, 'uptime', null, function () use ($from_sysctl) {
        return $from_sysctl(__NAMESPACE__ . '\\uptime_secs');
    });
    // The CPU section: usage and cores are each null when not read, one error names every cause.
    $cpu_errors = [];
    $usage = section($cpu_errors, 'cpu', null, function () use ($from_sysctl) {
        return $from_sysctl(function (array $values): float {
            return cpu_usage_pct((string) ($values['kern.cp_time'] ?? ''));
        });
    });
    $cores = section($cpu_errors, 'cpu', null, function () use ($from_sysctl) {
        return $from_sysctl(__NAMESPACE__ . '\\cpu_cores');
    });
    $load = section($cpu_errors, 'cpu', [0.0, 0.0, 0.0], __NAMESPACE__ . '\\load_average');
    if ($cpu_errors !== []) {
        $messages = array_values(array_unique(array_column($cpu_errors, 'message')));
        $errors[] = ['section' => 'cpu', 'message' => implode('; ', $messages)];
    }
    $memory = section($errors, 'memory', null, function () use ($from_sysctl) {
        return $from_sysctl(__NAMESPACE__ . '\\memory');
    });
    return [
        'uptime_secs' => $uptime,
        'cpu' => ['usage_pct' => $usage, 'load' => $load, 'cores' => $cores],
        'memory' => $memory,
        'disks' => section($errors, 'disks', [], __NAMESPACE__ . '\\disks'),
        'interfaces' => section($errors, 'interfaces', [], __NAMESPACE__ . '\\interfaces'),
        'gateways' => section($errors, 'gateways', [], __NAMESPACE__ . '\\gateways'),
        'services' => section($errors, 'services', [], __NAMESPACE__ . '\\services'),
        'hostname' => fqdn(),
        'platform' => 'pfSense',
        'dns_servers' => dns_servers(),
        // Read last: pfSense's own code may save the configuration while the figures are read
        // (return_gateways_array() syncs the configured gateways once), so the hash is of what is
        // on disk afterwards.
        'config_hash' => config_hash(read_config_xml()),
        'errors' => $errors,
    ];
}

/** @param mixed $params ignored */
function config_get($params): array
{
    $xml = read_config_xml();
    if (preg_match('//u', $xml) !== 1) {
        throw new Failure('internal', 'config.xml is not valid UTF-8, so it cannot be sent as JSON text');
    }
    return ['hash' => config_hash($xml), 'xml' => $xml];
}

/**
 * Give this Mudmap device root access: its line in the uid-0 user's authorized keys (System > User
 * Manager > admin), replacing the same device's earlier line in place, else appended. Every other
 * line stays byte for byte. Saved with local_user_set() and write_config(), then checked.
 *
 * @param mixed $params {"authorized_key": "command=\"…\",no-pty,… ssh-ed25519 AAAA… mudmap:I:D"}
 */
function access_ensure($params): array
{
    $key = access_line($params);
    require_user_api();
    $lock = mudmap_lock();
    try {
        refresh_config();
        [$index, $user] = root_user();
        $parts = explode("\n", authorized_keys_text($user));
        $replaced = false;
        $others = [];
        foreach ($parts as $i => $part) {
            $comment = mudmap_comment($part);
            if ($comment === null) {
                continue;
            }
            if ($comment === $key['comment']) {
                if (!$replaced) {
                    $parts[$i] = $key['line'] . (substr($part, -1) === "\r" ? "\r" : '');
                    $replaced = true;
                } else {
                    unset($parts[$i]); // a duplicate of the same device's line
                }
            } elseif (!in_array($comment, $others, true)) {
                $others[] = $comment;
            }
        }
        $text = implode("\n", $parts);
        if (!$replaced) {
            $text .= ($text === '' || substr($text, -1) === "\n" ? '' : "\n") . $key['line'] . "\n";
        }
        save_root_keys($index, $user, $text, sprintf(
            'Mudmap: %s the root access of %s (admin authorized keys)',
            $replaced ? 'renewed' : 'added',
            $key['comment']
        ));

        refresh_config(true);
        [, $saved] = root_user();
        $count = count(array_keys(key_lines(authorized_keys_text($saved)), $key['line'], true));
        if ($count !== 1) {
            throw new Failure('write_failed', sprintf(
                'write_config() reported success, but the configuration read again holds the line of %s %d times, not once',
                $key['comment'],
                $count
            ));
        }
        $file = path(ROOT_AUTHORIZED_KEYS);
        $written = @file_get_contents($file);
        if ($written === false || !in_array($key['line'], key_lines($written), true)) {
            throw new Failure('write_failed', sprintf(
                'the configuration holds the line of %s, but %s %s',
                $key['comment'],
                $file,
                $written === false ? 'cannot be read' : 'does not hold it'
            ));
        }
    } finally {
        mudmap_unlock($lock);
    }
    return ['created' => !$replaced, 'others' => $others, 'config_hash' => config_hash(read_config_xml())];
}

/**
 * Take this Mudmap device's root access away: every Mudmap line carrying its key, nothing else.
 * With "agent": true, and when no other Mudmap line remains, the agent's directory too.
 *
 * @param mixed $params {"authorized_key": "<the line>", "agent": true}
 */
function access_remove($params): array
{
    $key = access_line($params);
    $agent = $params->agent ?? false;
    if (!is_bool($agent)) {
        throw new Failure('invalid_params', 'agent must be true or false');
    }
    require_user_api();
    $lock = mudmap_lock();
    try {
        refresh_config();
        [$index, $user] = root_user();
        $parts = explode("\n", authorized_keys_text($user));
        $removed = false;
        $others = [];
        foreach ($parts as $i => $part) {
            $comment = mudmap_comment($part);
            if ($comment === null) {
                continue;
            }
            if (line_key($part) === $key['key']) {
                unset($parts[$i]);
                $removed = true;
            } elseif (!in_array($comment, $others, true)) {
                $others[] = $comment;
            }
        }
        if ($removed) {
            save_root_keys($index, $user, implode("\n", $parts), "Mudmap: removed the root access of {$key['comment']} (admin authorized keys)");

            refresh_config(true);
            [, $saved] = root_user();
            foreach (key_lines(authorized_keys_text($saved)) as $line) {
                if (mudmap_comment($line) !== null && line_key($line) === $key['key']) {
                    throw new Failure('write_failed', "write_config() reported success, but the configuration read again still holds the key of {$key['comment']}");
                }
            }
            $file = path(ROOT_AUTHORIZED_KEYS);
            $written = @file_get_contents($file);
            if ($written !== false && strpos($written, $key['key']) !== false) {
                throw new Failure('write_failed', "the configuration no longer holds the key of {$key['comment']}, but {$file} still does");
            }
        }
        $agent_removed = false;
        if ($agent && $others === []) {
            $dir = path(AGENT_DIR);
            foreach (is_dir($dir) ? (scandir($dir) ?: []) : [] as $name) {
                if (is_file("{$dir}/{$name}") || is_link("{$dir}/{$name}")) {
                    @unlink("{$dir}/{$name}"); // agent.php, and agent.php.new of an interrupted install
                }
            }
            if (is_dir($dir)) {
                @rmdir($dir);
            }
            clearstatcache();
            if (file_exists($dir)) {
                throw new Failure('write_failed', ($removed ? "the key line of {$key['comment']} was removed, but " : '')
                    . "the agent directory {$dir} could not be deleted");
            }
            $agent_removed = true;
        }
    } finally {
        mudmap_unlock($lock);
    }
    return ['removed' => $removed, 'others' => $others, 'agent_removed' => $agent_removed, 'config_hash' => config_hash(read_config_xml())];
}

/**
 * Remove the `mudmap` service account that agents before 1.2.0 created (a normal user), only when
 * it carries Mudmap's description: local_user_del() and write_config(), then checked.
 *
 * @param mixed $params {"name": "mudmap"}
 */
function account_remove($params): array
{
    $name = $params->name ?? null;
    if ($name !== LEGACY_USER) {
        throw new Failure('invalid_params', sprintf(
            'this agent removes only the account "%s", not %s',
            LEGACY_USER,
            json_encode($name, JSON_FLAGS)
        ));
    }
    require_user_api();
    $lock = mudmap_lock();
    try {
        refresh_config();
        $users = cfg('system/user', []);
        $users = is_array($users) ? array_values($users) : [];
        $index = find_user($users, $name);
        if ($index === null) {
            return ['removed' => false];
        }
        if (text($users[$index]['descr'] ?? '') !== LEGACY_USER_DESCR) {
            throw new Failure('conflict', sprintf(
                'the user "%s" on this firewall is not Mudmap\'s service account (its description is %s), so it is left alone',
                $name,
                json_encode(text($users[$index]['descr'] ?? ''), JSON_FLAGS)
            ));
        }
        \local_user_del($users[$index]);
        array_splice($users, $index, 1);
        set_cfg('system/user', $users);
        checked_write_config("Mudmap: removed the service account {$name} of Mudmap agents before 1.2.0");
        refresh_config(true);
        $after = cfg('system/user', []);
        if (find_user(is_array($after) ? array_values($after) : [], $name) !== null) {
            throw new Failure('write_failed', "write_config() reported success, but the configuration read again still lists the user {$name}");
        }
    } finally {
        mudmap_unlock($lock);
    }
    return ['removed' => true];
}

/**
 * The authorized_key param checked against the one line Mudmap writes.
 *
 * @param mixed $params
 * @return array{line: string, key: string, comment: string}
 */
function access_line($params): array
{
    $line = $params->authorized_key ?? null;
    $pattern = '/^command="' . preg_quote(DISPATCHER, '/') . '"' . preg_quote(KEY_OPTIONS, '/')
        . ' ssh-ed25519 ([A-Za-z0-9+\/]{68}) (mudmap:[A-Za-z0-9-]{1,64}:[A-Za-z0-9-]{1,64})$/D';
    if (!is_string($line) || preg_match($pattern, $line, $m) !== 1) {
        throw new Failure(
            'invalid_params',
            'authorized_key must be exactly Mudmap\'s line: command="<the Mudmap dispatcher>"' . KEY_OPTIONS
            . ' ssh-ed25519 <key> mudmap:<instance>:<device>'
        );
    }
    $blob = base64_decode($m[1], true);
    if ($blob === false || strlen($blob) !== 51 || strpos($blob, ED25519_BLOB_PREFIX) !== 0) {
        throw new Failure('invalid_params', 'authorized_key: the key is not an ed25519 public key (51 bytes, ssh-ed25519, 32 key bytes)');
    }
    return ['line' => $line, 'key' => $m[1], 'comment' => $m[2]];
}

/** The comment of a Mudmap line ("mudmap:…" as its last field), or null for any other line. */
function mudmap_comment(string $line): ?string
{
    return preg_match('/\s(mudmap:\S*)\s*$/', $line, $m) === 1 ? $m[1] : null;
}

/** The base64 key of an authorized_keys line with an ssh-ed25519 key, or null. */
function line_key(string $line): ?string
{
    return preg_match('/(?:^|\s)ssh-ed25519\s+(\S+)/', $line, $m) === 1 ? $m[1] : null;
}

/** @return string[] the lines of an authorized_keys text, without "\r" */
function key_lines(string $text): array
{
    return array_map(function (string $line): string {
        return rtrim($line, "\r");
    }, explode("\n", $text));
}

/** @return array{0: int, 1: array} the index in system/user and the entry of the uid-0 user */
function root_user(): array
{
    $users = cfg('system/user', []);
    foreach (is_array($users) ? $users : [] as $i => $user) {
        if (is_array($user) && text($user['uid'] ?? '') === '0') {
            return [$i, $user];
        }
    }
    throw new Failure('internal', 'the configuration has no user with uid 0 (admin)');
}

/** The text of a user's Authorized SSH Keys field (stored base64); "" when there is none. */
function authorized_keys_text(array $user): string
{
    $stored = text($user['authorizedkeys'] ?? '');
    if ($stored === '') {
        return '';
    }
    $text = base64_decode($stored, true);
    if ($text === false) {
        throw new Failure('internal', "the authorized keys of the user {$user['name']} in the configuration are not valid base64; nothing was changed");
    }
    return $text;
}

/** Store the uid-0 user's authorized keys: config, local_user_set() (root's file), write_config(). */
function save_root_keys($index, array $user, string $text, string $description): void
{
    $user['authorizedkeys'] = base64_encode($text);
    set_cfg("system/user/{$index}", $user);
    \local_user_set($user);
    checked_write_config($description);
}

/** write_config(), which returns the configuration on success and false or -1 on failure. */
function checked_write_config(string $description): void
{
    $result = \write_config($description);
    if (!is_array($result)) {
        throw new Failure('write_failed', 'pfSense\'s write_config() failed (returned ' . json_encode($result) . '); nothing was saved');
    }
}

/**
 * pfSense's lock('mudmap', LOCK_EX): serialises Mudmap's read-modify-write sequences. Not
 * lock('config'), which write_config() takes itself and which is not re-entrant.
 *
 * @return resource|null
 */
function mudmap_lock()
{
    if (!function_exists('lock')) {
        return null;
    }
    $lock = \lock('mudmap', LOCK_EX);
    if (!is_resource($lock)) {
        throw new Failure('locked', 'the Mudmap write lock (lock(\'mudmap\')) could not be obtained');
    }
    return $lock;
}

/** @param resource|null $lock */
function mudmap_unlock($lock): void
{
    if ($lock !== null && function_exists('unlock')) {
        \unlock($lock);
    }
}

function find_user(array $users, string $name): ?int
{
    foreach ($users as $i => $user) {
        if (is_array($user) && ($user['name'] ?? null) === $name) {
            return $i;
        }
    }
    return null;
}

/** pfSense's user API and write_config(), loaded on first use. */
function require_user_api(): void
{
    if (!function_exists('local_user_set') && is_file(path(PFSENSE_INC . '/auth.inc'))) {
        require_once path(PFSENSE_INC . '/auth.inc');
    }
    foreach (['local_user_set', 'local_user_del', 'write_config'] as $function) {
        if (!function_exists($function)) {
            throw new Failure('internal', "pfSense's {$function}() is not available (auth.inc / config.lib.inc)");
        }
    }
}

/**
 * Set a value of the parsed configuration by slash path.
 *
 * @param mixed $value
 */
function set_cfg(string $path, $value): void
{
    if (function_exists('config_set_path')) {
        \config_set_path($path, $value); // 2.7 and later
        return;
    }
    $node = &$GLOBALS['config']; // 2.6
    foreach (explode('/', $path) as $key) {
        if (!is_array($node)) {
            $node = [];
        }
        if (!array_key_exists($key, $node)) {
            $node[$key] = [];
        }
        $node = &$node[$key];
    }
    $node = $value;
}

/* ---------------------------------------------------------------------------------------------
 * pfSense access
 * ------------------------------------------------------------------------------------------- */

/** A path on the device (under MUDMAP_AGENT_ROOT in tests). */
function path(string $absolute): string
{
    return Runtime::$root . $absolute;
}

function read_config_xml(): string
{
    $file = path(CONFIG_XML);
    $xml = @file_get_contents($file);
    if ($xml === false) {
        throw new Failure('internal', "cannot read {$file}");
    }
    return $xml;
}

/** `sha256:` and the hex SHA-256 of the exact bytes, as the simulator's config_hash(). */
function config_hash(string $xml): string
{
    return 'sha256:' . hash('sha256', $xml);
}

/**
 * Re-read pfSense's parsed configuration, so a long-lived serve process sees changes made since it
 * started. This goes through pfSense's cache (/tmp/config.cache), which write_config() renews, so
 * the agent sees what the GUI sees; with $from_file (checking a write) config.xml is parsed itself.
 */
function refresh_config(bool $from_file = false): void
{
    // $from_file: parse config.xml itself, not the cache (to check what a write left on disk).
    if (function_exists('config_read_file')) {
        \config_read_file(false, !$from_file); // 2.8 and later; sets the global config itself
    } elseif (function_exists('parse_config')) {
        $GLOBALS['config'] = \parse_config($from_file); // 2.6 and 2.7 ($parse: skip the cache)
    }
}

/**
 * A value from the parsed configuration by slash path ("system/hostname").
 *
 * @param mixed $default
 * @return mixed
 */
function cfg(string $path, $default = null)
{
    if (function_exists('config_get_path')) {
        return \config_get_path($path, $default); // 2.7 and later
    }
    $node = $GLOBALS['config'] ?? null; // 2.6: the global $config array
    foreach (explode('/', $path) as $key) {
        if (!is_array($node) || !array_key_exists($key, $node)) {
            return $default;
        }
        $node = $node[$key];
    }
    return $node;
}

/**
 * A value from pfSense's globals ($g).
 *
 * @return mixed
 */
function pfsense_global(string $key)
{
    return function_exists('g_get') ? \g_get($key) : ($GLOBALS['g'][$key] ?? null);
}

/** "2.7.2", "2.7.2-p1", "24.03": /etc/version (with the patch level) without "-RELEASE". */
function product_version(): string
{
    $version = pfsense_global('product_version_string') ?? pfsense_global('product_version');
    return str_replace('-RELEASE', '', trim((string) $version));
}

/** CE releases are numbered 2.x; Plus releases YY.MM (21.02 onwards). */
function edition(string $version): string
{
    return (int) $version >= 21 ? 'Plus' : 'CE';
}

/** Sysctl values by name, through pfSense's get_sysctl() (one /sbin/sysctl run for all). */
function sysctls(array $names): array
{
    if (!function_exists('get_sysctl')) {
        throw new \RuntimeException("pfSense's get_sysctl() is not available (util.inc)");
    }
    $values = \get_sysctl($names);
    if (!is_array($values)) {
        throw new \RuntimeException('get_sysctl() returned no values');
    }
    return $values;
}

/** A sysctl value, or an exception saying the system did not report it. */
function sysctl_value(array $sysctl, string $name): string
{
    $value = trim(text($sysctl[$name] ?? ''));
    if ($value === '') {
        throw new \RuntimeException("sysctl did not report {$name}");
    }
    return $value;
}

/** Seconds since boot, as pfSense's get_uptime_sec() computes it from kern.boottime. */
function uptime_secs(array $sysctl): int
{
    $boottime = sysctl_value($sysctl, 'kern.boottime');
    if (preg_match('/sec = (\d+)/', $boottime, $m) !== 1) {
        throw new \RuntimeException('kern.boottime is not "{ sec = …": ' . $boottime);
    }
    return max(0, time() - (int) $m[1]);
}

/** The number of CPUs: kern.smp.cpus, else hw.ncpu. */
function cpu_cores(array $sysctl): int
{
    foreach (['kern.smp.cpus', 'hw.ncpu'] as $name) {
        $value = trim(text($sysctl[$name] ?? ''));
        if (ctype_digit($value) && (int) $value > 0) {
            return (int) $value;
        }
    }
    throw new \RuntimeException('sysctl did not report kern.smp.cpus or hw.ncpu');
}

/** Busy share of all CPUs in percent, from kern.cp_time ("user nice sys intr idle" ticks). */
function cpu_usage_pct(string $cp_time): float
{
    static $previous = null; // [ticks, when] of the last measurement
    $now = cp_ticks($cp_time);
    $at = microtime(true);
    if ($previous === null || $at - $previous[1] < CPU_MIN_WINDOW) {
        $base = $now;
        usleep(CPU_SAMPLE_USEC);
        $now = cp_ticks((string) (sysctls(['kern.cp_time'])['kern.cp_time'] ?? ''));
        $at = microtime(true);
    } else {
        $base = $previous[0];
    }
    $previous = [$now, $at];
    $total = array_sum($now) - array_sum($base);
    $idle = $now[4] - $base[4];
    return $total > 0 ? round(max(0.0, min(100.0, 100.0 * ($total - $idle) / $total)), 2) : 0.0;
}

/** @return int[] the five kern.cp_time counters */
function cp_ticks(string $value): array
{
    if (trim($value) === '') {
        throw new \RuntimeException('sysctl did not report kern.cp_time');
    }
    $ticks = preg_split('/\s+/', trim($value));
    if (count($ticks) !== 5 || array_filter($ticks, 'ctype_digit') !== $ticks) {
        throw new \RuntimeException('kern.cp_time is not five tick counters: ' . $value);
    }
    return array_map('intval', $ticks);
}

/** @return float[] the 1, 5 and 15 minute load averages */
function load_average(): array
{
    $load = sys_getloadavg();
    if (!is_array($load) || count($load) !== 3) {
        throw new \RuntimeException('the load averages could not be read (sys_getloadavg)');
    }
    return array_map(function ($l) {
        return round((float) $l, 2);
    }, array_values($load));
}

/** RAM as pfSense's dashboard counts it (mem_usage()): inactive, laundry and free pages are available. */
function memory(array $sysctl): array
{
    $total = (int) sysctl_value($sysctl, 'vm.stats.vm.v_page_count');
    $page = (int) sysctl_value($sysctl, 'hw.pagesize');
    $available = 0;
    foreach (['vm.stats.vm.v_inactive_count', 'vm.stats.vm.v_laundry_count', 'vm.stats.vm.v_free_count'] as $name) {
        $available += (int) sysctl_value($sysctl, $name);
    }
    if ($page <= 0 || $total <= 0) {
        throw new \RuntimeException('sysctl reported no memory (hw.pagesize or vm.stats.vm.v_page_count is 0)');
    }
    return ['total_bytes' => $total * $page, 'used_bytes' => max(0, $total - $available) * $page];
}

/** hostname.domain as System > General Setup sets them. */
function fqdn(): string
{
    $hostname = (string) cfg('system/hostname', '');
    $domain = (string) cfg('system/domain', '');
    return $domain === '' ? $hostname : "{$hostname}.{$domain}";
}

/** The DNS servers of System > General Setup, in order (one or several `dnsserver` tags). */
function dns_servers(): array
{
    $configured = cfg('system/dnsserver', []);
    $configured = is_array($configured) ? $configured : [$configured];
    return array_values(array_filter(array_map('strval', $configured), function ($server) {
        return $server !== '';
    }));
}

/**
 * A status section: what $collect returns, or, when it throws, $empty with the cause in $errors.
 *
 * @param mixed $empty
 * @return mixed
 */
function section(array &$errors, string $section, $empty, callable $collect)
{
    try {
        return $collect();
    } catch (\Throwable $e) {
        $message = $e->getMessage();
        $errors[] = ['section' => $section, 'message' => $message !== '' ? $message : get_class($e)];
        diag_once("status: {$section} not read: {$message}");
        return $empty;
    }
}

/** The root file system as df(1) reports it (size and used, in bytes). */
function disks(): array
{
    $output = [];
    exec('/bin/df -kP ' . escapeshellarg(path('/')) . ' 2>/dev/null', $output, $status);
    $fields = preg_split('/\s+/', trim($output[1] ?? ''));
    if ($status !== 0 || count($fields) < 6 || !ctype_digit($fields[1]) || !ctype_digit($fields[2])) {
        throw new \RuntimeException('df gave no figures for /');
    }
    return [['mount' => '/', 'total_bytes' => (int) $fields[1] * 1024, 'used_bytes' => (int) $fields[2] * 1024]];
}

/** Every configured interface, as Status > Interfaces shows it (get_interface_info()). */
function interfaces(): array
{
    if (!function_exists('get_interface_info')) {
        throw new \RuntimeException("pfSense's get_interface_info() is not available (pfsense-utils.inc)");
    }
    $configured = cfg('interfaces', []);
    if (!is_array($configured)) {
        return [];
    }
    $interfaces = [];
    foreach ($configured as $name => $conf) {
        if (!is_array($conf)) {
            continue;
        }
        $name = (string) $name;
        $info = \get_interface_info($name);
        $info = is_array($info) ? $info : [];
        // get_interface_info() reports the live addresses; when it knows nothing, the static ones.
        $addresses = $info !== [] ? $info : $conf;
        $description = trim((string) ($conf['descr'] ?? ''));
        $interfaces[] = [
            'name' => $name,
            'device' => (string) ($info['if'] ?? $conf['if'] ?? ''),
            'description' => $description !== '' ? $description : strtoupper($name),
            'status' => (string) ($info['status'] ?? 'unknown'),
            'media' => (string) ($info['media'] ?? ''),
            'ipv4' => cidr($addresses['ipaddr'] ?? null, $addresses['subnet'] ?? null),
            'ipv6' => cidr($addresses['ipaddrv6'] ?? null, $addresses['subnetv6'] ?? null),
            'rx_bytes' => counter($info['inbytes'] ?? 0),
            'tx_bytes' => counter($info['outbytes'] ?? 0),
        ];
    }
    return $interfaces;
}

/**
 * "198.51.100.10/24", or null when there is no address (unassigned, "dhcp", "track6"...).
 *
 * @param mixed $address
 * @param mixed $bits
 */
function cidr($address, $bits): ?string
{
    if (!is_string($address) || filter_var($address, FILTER_VALIDATE_IP) === false) {
        return null;
    }
    return is_numeric($bits) ? "{$address}/" . (int) $bits : $address;
}

/** @param mixed $value a byte counter as pfSense reports it (int, float or numeric string) */
function counter($value): int
{
    if (!is_numeric($value) || $value <= 0) {
        return 0;
    }
    return $value >= PHP_INT_MAX ? PHP_INT_MAX : (int) $value;
}

/** Every active gateway, with dpinger's figures (return_gateways_status()). */
function gateways(): array
{
    foreach (['return_gateways_array', 'return_gateways_status'] as $function) {
        if (!function_exists($function)) {
            throw new \RuntimeException("pfSense's {$function}() is not available (gwlb.inc)");
        }
    }
    $configured = \return_gateways_array();
    $states = \return_gateways_status(true);
    if (!is_array($configured)) {
        throw new \RuntimeException('return_gateways_array() returned no list');
    }
    $states = is_array($states) ? $states : [];
    $gateways = [];
    foreach ($configured as $key => $gateway) {
        if (!is_array($gateway)) {
            continue;
        }
        $name = (string) ($gateway['name'] ?? $key);
        $state = is_array($states[$name] ?? null) ? $states[$name] : [];
        $gateways[] = [
            'name' => $name,
            'address' => (string) ($gateway['gateway'] ?? ''),
            'monitor' => (string) ($state['monitorip'] ?? $gateway['monitor'] ?? ''),
            'status' => gateway_status($state),
            'rtt_ms' => round((float) ($state['delay'] ?? 0), 2), // "4.2ms"
            'rttsd_ms' => round((float) ($state['stddev'] ?? 0), 2),
            'loss_pct' => round((float) ($state['loss'] ?? 0), 2), // "0.0%"
        ];
    }
    return $gateways;
}

/**
 * online, degraded, down or unknown, as Status > Gateways judges it: "down" (also force_down, and
 * highloss/highdelay unless the gateway's action is disabled) is down; online with a loss or delay
 * substatus is degraded. Monitoring disabled ("Online (unmonitored)", status "none" on some
 * releases) is online. No monitoring data at all ("Pending": dpinger not running for it, e.g. an
 * unused IPv6 gateway) is unknown — not reported down, so it raises no alarm.
 */
function gateway_status(array $state): string
{
    if ($state === []) {
        return 'unknown';
    }
    $status = (string) ($state['status'] ?? '');
    if (!empty($state['monitor_disable']) || strcasecmp($status, 'none') === 0) {
        return 'online';
    }
    if (stripos($status, 'online') === false) {
        return 'down';
    }
    $substatus = (string) ($state['substatus'] ?? '');
    return in_array($substatus, ['loss', 'delay', 'highloss', 'highdelay'], true) ? 'degraded' : 'online';
}

/** The services Status > Services lists (get_services()), running or stopped. */
function services(): array
{
    foreach (['get_services', 'get_service_status'] as $function) {
        if (!function_exists($function)) {
            throw new \RuntimeException("pfSense's {$function}() is not available (service-utils.inc)");
        }
    }
    $listed = \get_services();
    if (!is_array($listed)) {
        throw new \RuntimeException('get_services() returned no list');
    }
    $services = [];
    foreach ($listed as $service) {
        if (!is_array($service) || ($service['name'] ?? '') === '') {
            continue;
        }
        $running = (bool) \get_service_status($service);
        $services[] = [
            'name' => (string) $service['name'],
            'description' => service_description($service),
            'status' => $running ? 'running' : 'stopped',
        ];
    }
    return $services;
}

/**
 * Start, stop or restart one service the way Status > Services does (service_control_*() from
 * service-utils.inc), then report it as `status` lists it, its state read after the action.
 *
 * @param mixed $params {"name": "unbound", "action": "restart"}
 */
function service_control($params): array
{
    $name = $params->name ?? null;
    $action = $params->action ?? null;
    if (!is_string($name) || $name === '' || !in_array($action, ['start', 'stop', 'restart'], true)) {
        throw new Failure('invalid_params', 'name and action (start, stop or restart) are required');
    }
    $function = "service_control_{$action}";
    if (!function_exists('get_services') || !function_exists($function)) {
        throw new Failure('internal', "pfSense's get_services() or {$function}() is not available (service-utils.inc)");
    }
    if (!function_exists('get_service_status')) {
        // Checked before acting: the answer must be the state read after the action, never a guess.
        throw new Failure(
            'internal',
            "pfSense's get_service_status() is not available (service-utils.inc): the agent cannot tell the service's state after the action, so it did not act"
        );
    }
    $listed = \get_services();
    $found = null;
    foreach (is_array($listed) ? $listed : [] as $service) {
        if (is_array($service) && ($service['name'] ?? null) === $name) {
            $found = $service;
            break;
        }
    }
    if ($found === null) {
        throw new Failure('not_found', sprintf('no service %s on this firewall', json_encode($name)));
    }
    // The instance of a multi-instance service (OpenVPN, captive portal), as the GUI passes it.
    $extras = [];
    foreach (['id', 'vpnid', 'mode', 'zone'] as $key) {
        if (isset($found[$key])) {
            $extras[$key] = $found[$key];
        }
    }
    $function($name, $extras);
    $running = (bool) \get_service_status($found); // read again, after the action
    return [
        'name' => $name,
        'description' => service_description($found),
        'status' => $running ? 'running' : 'stopped',
    ];
}

function service_description(array $service): string
{
    // get_services() HTML-escapes user text (OpenVPN, captive portal) for the GUI.
    $description = html_entity_decode((string) ($service['description'] ?? ''), ENT_QUOTES | ENT_HTML5, 'UTF-8');
    if ($description === '' && function_exists('get_pkg_descr')) {
        $description = (string) \get_pkg_descr($service['name']); // package services, as Status > Services
    }
    return $description !== '' ? $description : (string) $service['name'];
}

/* ---------------------------------------------------------------------------------------------
 * DHCP leases, ARP table and packages (read-only); reboot and halt
 * ------------------------------------------------------------------------------------------- */

/**
 * pfSense's system.inc (leases, ARP table, reboot, halt), loaded on first use when $function is
 * missing. On a firewall service-utils.inc has loaded it already, at file scope.
 */
function require_system_inc(string $function): void
{
    if (!function_exists($function) && is_file(path(PFSENSE_INC . '/system.inc'))) {
        require_once path(PFSENSE_INC . '/system.inc');
    }
}

/**
 * Status > DHCP Leases: pfSense's system_get_dhcpleases() (ISC dhcpd's lease file or Kea, plus the
 * static mappings), or only the static mappings from the config when that function is missing.
 * Sorted by address.
 *
 * @param mixed $params ignored
 */
function dhcp_leases($params): array
{
    refresh_config();
    require_system_inc('system_get_dhcpleases');
    if (function_exists('system_get_dhcpleases')) {
        // false: no reverse DNS lookup per lease without a hostname (2.6 and later; 2.5 does none).
        $found = \system_get_dhcpleases(false);
        $rows = is_array($found) && is_array($found['lease'] ?? null) ? $found['lease'] : [];
    } else {
        diag_once('system_get_dhcpleases() is missing (system.inc): dhcp.leases reports the static mappings only');
        $rows = static_mappings();
    }
    $local_time = lease_times_are_local();
    $leases = [];
    foreach ($rows as $row) {
        if (is_array($row) && trim(text($row['ip'] ?? '')) !== '') {
            $leases[] = lease($row, $local_time);
        }
    }
    usort($leases, function (array $a, array $b): int {
        return compare_ips($a['ip'], $b['ip']);
    });
    return ['leases' => $leases];
}

/** The static mappings of every interface's DHCP server, as system_get_dhcpleases() lists them. */
function static_mappings(): array
{
    $rows = [];
    $interfaces = cfg('interfaces', []);
    foreach (is_array($interfaces) ? array_keys($interfaces) : [] as $if) {
        $maps = cfg("dhcpd/{$if}/staticmap", []);
        foreach (is_array($maps) ? $maps : [] as $map) {
            if (is_array($map)) {
                $rows[] = [
                    'ip' => $map['ipaddr'] ?? '', 'type' => 'static', 'act' => 'static', 'if' => (string) $if,
                    'mac' => $map['mac'] ?? '', 'hostname' => $map['hostname'] ?? '', 'ends' => '', 'online' => false,
                ];
            }
        }
    }
    return $rows;
}

/**
 * One row of system_get_dhcpleases() in the protocol's shape. pfSense's words are gettext()
 * translated and changed between releases ("online" in 2.5/2.6, "active" in 2.7.0, "active/online"
 * later); dynamic ISC leases carry no interface, which is found as Status > DHCP Leases does.
 */
function lease(array $row, bool $local_time): array
{
    $ip = trim(text($row['ip']));
    $static = pfsense_word($row['type'] ?? '', ['static']) || pfsense_word($row['act'] ?? '', ['static']);
    $ends_at = $static ? null : lease_end($row['ends'] ?? $row['end'] ?? '', $local_time);
    if ($static) {
        $state = 'static';
    } elseif (pfsense_word($row['act'] ?? '', ['active'])) {
        $state = 'active';
    } elseif (text($row['act'] ?? '') === '') {
        $state = $ends_at !== null && $ends_at < time() ? 'expired' : 'active';
    } else {
        $state = 'expired'; // expired, or reserved (free on this failover peer): not in use
    }
    $online = $row['online'] ?? false;
    $interface = text($row['if'] ?? '');
    return [
        'ip' => $ip,
        'mac' => mac_address($row['mac'] ?? ''),
        'hostname' => trim(text($row['hostname'] ?? '')),
        'interface' => $interface !== '' ? $interface : lease_interface($ip),
        'kind' => $static ? 'static' : 'dynamic',
        'state' => $state,
        'online' => is_bool($online) ? $online : pfsense_word($online, ['online', 'active', 'active/online']),
        'ends_at' => $ends_at,
    ];
}

/**
 * Whether pfSense wrote lease times in local time: Kea's leases always (date()), ISC dhcpd's only
 * with "Change DHCP display lease time from UTC to local time" (dhcpd_date_adjust_gmt()).
 */
function lease_times_are_local(): bool
{
    if (function_exists('dhcp_is_backend') && \dhcp_is_backend('kea')) {
        return true;
    }
    $servers = cfg('dhcpd', []);
    foreach (is_array($servers) ? $servers : [] as $server) {
        if (is_array($server) && ($server['dhcpleaseinlocaltime'] ?? '') === 'yes') {
            return true;
        }
    }
    return false;
}

/**
 * Unix seconds of a lease end as pfSense formats it ("2026/11/28 10:00:00"); null for "", "n/a",
 * "Never" and anything unreadable. Local times are read in this process's time zone, the one
 * pfSense's date() wrote them in.
 *
 * @param mixed $value
 */
function lease_end($value, bool $local_time): ?int
{
    $value = trim(text($value));
    if (ctype_digit($value)) {
        return (int) $value;
    }
    if ($value === '' || strcasecmp($value, 'n/a') === 0 || pfsense_word($value, ['never'])) {
        return null;
    }
    $zone = $local_time ? new \DateTimeZone(date_default_timezone_get()) : new \DateTimeZone('UTC');
    $date = \DateTime::createFromFormat('!Y/m/d H:i:s', $value, $zone);
    if ($date !== false) {
        return $date->getTimestamp();
    }
    $time = strtotime($local_time ? $value : "{$value} UTC");
    return $time === false ? null : $time;
}

/**
 * The pfSense interface of a dynamic lease: the DHCP server whose range (or pool range) holds the
 * address, as Status > DHCP Leases finds it, else the interface whose IPv4 subnet holds it.
 */
function lease_interface(string $ip): string
{
    $address = ip2long($ip);
    if ($address === false) {
        return '';
    }
    $servers = cfg('dhcpd', []);
    foreach (is_array($servers) ? $servers : [] as $if => $server) {
        if (!is_array($server)) {
            continue;
        }
        $ranges = [$server['range'] ?? null];
        foreach (is_array($server['pool'] ?? null) ? $server['pool'] : [] as $pool) {
            $ranges[] = is_array($pool) ? ($pool['range'] ?? null) : null;
        }
        foreach ($ranges as $range) {
            $from = is_array($range) ? ip2long(text($range['from'] ?? '')) : false;
            $to = is_array($range) ? ip2long(text($range['to'] ?? '')) : false;
            if ($from !== false && $to !== false && $address >= $from && $address <= $to) {
                return (string) $if;
            }
        }
    }
    $interfaces = cfg('interfaces', []);
    foreach (is_array($interfaces) ? $interfaces : [] as $if => $conf) {
        $own = is_array($conf) ? ip2long(text($conf['ipaddr'] ?? '')) : false;
        $bits = is_array($conf) ? text($conf['subnet'] ?? '') : '';
        if ($own === false || !ctype_digit($bits) || (int) $bits > 32) {
            continue;
        }
        $mask = (int) $bits === 0 ? 0 : (0xFFFFFFFF << (32 - (int) $bits)) & 0xFFFFFFFF;
        if (($own & $mask) === ($address & $mask)) {
            return (string) $if;
        }
    }
    return '';
}

/**
 * Diagnostics > ARP Table: pfSense's system_get_arp_table() (`arp --libxo json -an`), or that
 * command itself when the function is missing. No reverse lookups ("?" is reported as "");
 * incomplete entries are left out; permanent ones have no expiry.
 *
 * @param mixed $params ignored
 */
function arp_table($params): array
{
    require_system_inc('system_get_arp_table');
    if (function_exists('system_get_arp_table')) {
        $found = \system_get_arp_table(false);
    } else {
        $arp = path(ARP_BINARY);
        if (!is_file($arp)) {
            throw new Failure(
                'internal',
                "cannot read the ARP table: pfSense's system_get_arp_table() is not available (system.inc) and {$arp} was not found"
            );
        }
        diag_once("system_get_arp_table() is missing (system.inc): arp.table runs {$arp}");
        $output = [];
        exec(escapeshellarg($arp) . ' --libxo json -an 2>/dev/null', $output, $status);
        $found = json_decode(implode("\n", $output), true);
        if ($status !== 0 || !is_array($found)) {
            throw new Failure('internal', "cannot read the ARP table: {$arp} --libxo json -an failed (exit status {$status})");
        }
    }
    $entries = [];
    foreach (arp_cache($found) as $row) {
        $ip = is_array($row) ? trim(text($row['ip-address'] ?? '')) : '';
        $mac = is_array($row) ? trim(text($row['mac-address'] ?? '')) : '';
        if ($ip === '' || $mac === '' || !empty($row['incomplete']) || stripos($mac, 'incomplete') !== false) {
            continue;
        }
        $hostname = trim(text($row['hostname'] ?? ''));
        if (is_numeric($row['expires'] ?? null)) {
            $expires = max(0, (int) $row['expires']);
        } else {
            $expires = empty($row['expired']) ? null : 0; // permanent: no expiry
        }
        $entries[] = [
            'ip' => $ip,
            'mac' => mac_address($mac),
            'interface' => text($row['interface'] ?? ''),
            'hostname' => $hostname === '?' ? '' : $hostname,
            'expires_secs' => $expires,
        ];
    }
    return ['entries' => $entries];
}

/**
 * The entries of arp(8)'s libxo output: system_get_arp_table() returns the "arp-cache" list itself;
 * the whole document ({"arp": {"arp-cache": [...]}}) and {"arp-cache": [...]} are accepted too.
 *
 * @param mixed $found
 */
function arp_cache($found): array
{
    if (!is_array($found)) {
        return [];
    }
    if (is_array($found['arp']['arp-cache'] ?? null)) {
        return $found['arp']['arp-cache'];
    }
    if (is_array($found['arp-cache'] ?? null)) {
        return $found['arp-cache'];
    }
    return array_key_exists('arp', $found) || array_key_exists('arp-cache', $found) ? [] : $found;
}

/**
 * System > Package Manager > Installed Packages, from the config (installedpackages/package),
 * sorted by name regardless of case.
 *
 * @param mixed $params ignored
 */
function packages_list($params): array
{
    refresh_config();
    $installed = cfg('installedpackages/package', []);
    $packages = [];
    foreach (is_array($installed) ? $installed : [] as $package) {
        if (is_array($package) && trim(text($package['name'] ?? '')) !== '') {
            $packages[] = [
                'name' => text($package['name']),
                'version' => text($package['version'] ?? ''),
                'description' => text($package['descr'] ?? ''),
            ];
        }
    }
    usort($packages, function (array $a, array $b): int {
        return strcasecmp($a['name'], $b['name']) ?: strcmp($a['name'], $b['name']);
    });
    return ['packages' => $packages];
}

/** @param mixed $params ignored */
function diag_reboot($params): array
{
    return power('reboot', 'system_reboot', '/etc/rc.reboot');
}

/** @param mixed $params ignored */
function diag_shutdown($params): array
{
    return power('shutdown', 'system_halt', '/etc/rc.halt');
}

/**
 * Reboot or halt as Diagnostics > Reboot / Halt System does (system_reboot() / system_halt(),
 * which run the rc script in the background), or by running the rc script itself when those are
 * missing. Only accepted when one of the two is available; carried out POWER_DELAY_USEC after the
 * answer has been written (see "Actions after the answer").
 */
function power(string $action, string $function, string $script): array
{
    // Only root can reboot or halt: dispatch() has refused a non-root agent with not_root already.
    require_system_inc($function);
    if (function_exists($function)) {
        $act = function () use ($function): void {
            usleep(POWER_DELAY_USEC);
            $function();
        };
    } elseif (is_file(path($script))) {
        diag_once("{$function}() is missing (system.inc): diag.{$action} runs " . path($script));
        $command = sprintf('sleep %d; exec %s', (int) ceil(POWER_DELAY_USEC / 1e6), escapeshellarg(path($script)));
        $act = function () use ($command): void {
            exec('/usr/bin/nohup /bin/sh -c ' . escapeshellarg($command) . ' </dev/null >/dev/null 2>&1 &');
        };
    } else {
        throw new Failure(
            'internal',
            "cannot {$action}: pfSense's {$function}() is not available (system.inc) and " . path($script) . ' was not found'
        );
    }
    Runtime::$afterResponse = $act;
    return ['action' => $action];
}

/**
 * Whether a word pfSense wrote is one of $english, as is or as gettext() translates it for the
 * configured language.
 *
 * @param mixed $value
 */
function pfsense_word($value, array $english): bool
{
    $value = trim(text($value));
    foreach ($english as $word) {
        if (strcasecmp($value, $word) === 0
            || (function_exists('gettext') && strcasecmp($value, (string) \gettext($word)) === 0)) {
            return true;
        }
    }
    return false;
}

/** "00:0c:29:aa:bb:cc": lower case, colons, two digits an octet. Anything else as it came. */
function mac_address($value): string
{
    $mac = strtolower(trim(text($value)));
    $octets = preg_split('/[:-]/', $mac);
    if (count($octets) !== 6) {
        return $mac;
    }
    foreach ($octets as $octet) {
        if (preg_match('/^[0-9a-f]{1,2}$/', $octet) !== 1) {
            return $mac;
        }
    }
    return implode(':', array_map(function (string $octet): string {
        return str_pad($octet, 2, '0', STR_PAD_LEFT);
    }, $octets));
}

/** Addresses in numeric order (IPv4 before IPv6); anything that is not an address after them. */
function compare_ips(string $a, string $b): int
{
    $x = @inet_pton($a);
    $y = @inet_pton($b);
    if ($x === false || $y === false) {
        return ($x === false) <=> ($y === false) ?: strcmp($a, $b);
    }
    return strlen($x) <=> strlen($y) ?: strcmp($x, $y);
}

/**
 * A config or pfSense value as text: scalars as PHP prints them, anything else (arrays, null) "".
 *
 * @param mixed $value
 */
function text($value): string
{
    return is_scalar($value) ? (string) $value : '';
}

/* ---------------------------------------------------------------------------------------------
 * Start-up. pfSense's includes must run at file scope: they define globals ($config, $g) there.
 * ------------------------------------------------------------------------------------------- */

set_up_process();

Runtime::$mode = $argv[1] ?? '';
if (count($argv) !== 2 || !in_array(Runtime::$mode, ['serve', 'call'], true)) {
    cannot_start('usage: php agent.php serve|call');
}

$mudmap_root = getenv('MUDMAP_AGENT_ROOT');
if ($mudmap_root !== false && $mudmap_root !== '' && $mudmap_root !== '/') {
    if ($mudmap_root[0] !== '/' || !is_dir($mudmap_root)) {
        cannot_start("MUDMAP_AGENT_ROOT must be an absolute path to a directory, not {$mudmap_root}");
    }
    Runtime::$root = rtrim($mudmap_root, '/');
}
unset($mudmap_root);

// pfSense's includes load each other by bare name ("util.inc"), through the include path.
set_include_path(path(PFSENSE_INC) . PATH_SEPARATOR . get_include_path());
if (!is_file(path(PFSENSE_INC . '/config.inc'))) {
    cannot_start('the pfSense PHP environment is missing: ' . path(PFSENSE_INC . '/config.inc') . ' not found');
}
try {
    require_once path(PFSENSE_INC . '/config.inc');
    foreach (STATUS_INCLUDES as $mudmap_include) {
        if (is_file(path(PFSENSE_INC . "/{$mudmap_include}"))) {
            require_once path(PFSENSE_INC . "/{$mudmap_include}");
        } else {
            diag("{$mudmap_include} not found: status reports less");
        }
    }
    unset($mudmap_include);
} catch (\Throwable $e) {
    cannot_start("loading the pfSense PHP environment failed: {$e->getMessage()}");
}
Runtime::$started = true;

finish(Runtime::$mode === 'serve' ? serve(STDIN) : call(STDIN));
