<?php
/*
 * PHP-level tests of the Mudmap pfSense agent (../agent.php).
 *
 *   php server/src/agent/php/tests/agent_test.php
 *
 * Runs the agent as a child process (proc_open), in call and serve mode, against temporary copies
 * of the stub pfSense tree server/tests/fixtures/pfsense-root (through MUDMAP_AGENT_ROOT), and
 * checks its answers against docs/agent-protocol.md and the server's serde types
 * (server/src/agent/protocol.rs). Prints one line per check; exits 1 if any check failed.
 * Self-contained: PHP 8.1+ CLI with the DOM extension (php-xml), nothing else.
 */

declare(strict_types=1);

const AGENT = __DIR__ . '/../agent.php';
const MAX_FRAME = 16 * 1024 * 1024;
const BOOTTIME = 1700000000; // kern.boottime in the stub (mudmap_stub.inc)
const TIMEOUT = 120.0;
const ERROR_CODES = [
    'bad_request', 'unsupported_version', 'unknown_method', 'invalid_params', 'not_found',
    'conflict', 'locked', 'busy', 'frame_too_large', 'not_root', 'write_failed', 'internal',
];
// Every run uses php.ini settings that would print errors on stdout: the agent must override them.
const PHP_ARGS = ['-d', 'display_errors=stdout', '-d', 'error_reporting=-1', '-d', 'log_errors=0'];

define('FIXTURE', dirname(__DIR__, 4) . '/tests/fixtures/pfsense-root');

/* ---------------------------------------------------------------------------------------------
 * Schemas: the server's serde types. Scalars: u32, u64, f64, string, ?string, bool;
 * ['list', schema]; ['array3', schema]; an object is an array of field => schema (exact keys).
 * ------------------------------------------------------------------------------------------- */

const HELLO = [
    'agent_version' => 'string', 'protocol' => 'u32', 'hostname' => 'string',
    'pfsense' => ['version' => 'string', 'edition' => 'string'], 'platform' => 'string',
    'capabilities' => ['list', 'string'], 'euid' => 'u32',
];
const STATUS = [
    'uptime_secs' => '?u64',
    'cpu' => ['usage_pct' => '?f64', 'load' => ['array3', 'f64'], 'cores' => '?u32'],
    'memory' => ['nullable', ['total_bytes' => 'u64', 'used_bytes' => 'u64']],
    'disks' => ['list', ['mount' => 'string', 'total_bytes' => 'u64', 'used_bytes' => 'u64']],
    'interfaces' => ['list', [
        'name' => 'string', 'device' => 'string', 'description' => 'string', 'status' => 'string',
        'media' => 'string', 'ipv4' => '?string', 'ipv6' => '?string', 'rx_bytes' => 'u64', 'tx_bytes' => 'u64',
    ]],
    'gateways' => ['list', [
        'name' => 'string', 'address' => 'string', 'monitor' => 'string', 'status' => 'string',
        'rtt_ms' => 'f64', 'rttsd_ms' => 'f64', 'loss_pct' => 'f64',
    ]],
    'services' => ['list', ['name' => 'string', 'description' => 'string', 'status' => 'string']],
    'hostname' => 'string', 'platform' => 'string', 'dns_servers' => ['list', 'string'],
    'config_hash' => 'string',
    'errors' => ['list', ['section' => 'string', 'message' => 'string']],
];
const ACCESS_ENSURED = ['created' => 'bool', 'others' => ['list', 'string'], 'config_hash' => 'string'];
const ACCESS_REMOVED = ['removed' => 'bool', 'others' => ['list', 'string'], 'agent_removed' => 'bool', 'config_hash' => 'string'];
const CONFIG_DOCUMENT = ['hash' => 'string', 'xml' => 'string'];
const DHCP_LEASES = ['leases' => ['list', [
    'ip' => 'string', 'mac' => 'string', 'hostname' => 'string', 'interface' => 'string', 'kind' => 'string',
    'state' => 'string', 'online' => 'bool', 'ends_at' => '?i64',
]]];
const ARP_TABLE = ['entries' => ['list', [
    'ip' => 'string', 'mac' => 'string', 'interface' => 'string', 'hostname' => 'string', 'expires_secs' => '?u64',
]]];
const PACKAGES = ['packages' => ['list', ['name' => 'string', 'version' => 'string', 'description' => 'string']]];
const POWER_ACCEPTED = ['action' => 'string'];
const CAPABILITIES = [
    'hello', 'status', 'config.get', 'access.ensure', 'access.remove', 'account.remove', 'service.control',
    'dhcp.leases', 'arp.table', 'packages.list', 'diag.reboot', 'diag.shutdown',
];
// The forced command of Mudmap's authorized_keys line, byte for byte (server/src/activation/remote.rs).
const DISPATCHER = <<<'SH'
/bin/sh -c 'case $SSH_ORIGINAL_COMMAND in mudmap-install-agent) umask 022 && /bin/mkdir -p /usr/local/share/mudmap && /bin/cat > /usr/local/share/mudmap/agent.php.new && /bin/mv -f /usr/local/share/mudmap/agent.php.new /usr/local/share/mudmap/agent.php;; *) test -f /usr/local/share/mudmap/agent.php || exit 127; exec /usr/local/bin/php /usr/local/share/mudmap/agent.php serve;; esac'
SH;
const KEY_OPTIONS = ',no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding';

/** @return string[] where $value does not fit $schema */
function schema_errors(mixed $value, string|array $schema, string $at = '$'): array
{
    if (is_string($schema)) {
        $ok = match ($schema) {
            'u32' => is_int($value) && $value >= 0 && $value <= 0xFFFFFFFF,
            'u64' => is_int($value) && $value >= 0,
            '?u64' => $value === null || (is_int($value) && $value >= 0),
            '?i64' => $value === null || is_int($value),
            '?u32' => $value === null || (is_int($value) && $value >= 0 && $value <= 0xFFFFFFFF),
            'f64' => is_int($value) || is_float($value),
            '?f64' => $value === null || is_int($value) || is_float($value),
            'string' => is_string($value),
            '?string' => $value === null || is_string($value),
            'bool' => is_bool($value),
        };
        return $ok ? [] : ["{$at}: expected {$schema}, got " . json_encode($value)];
    }
    if (($schema[0] ?? null) === 'nullable') {
        return $value === null ? [] : schema_errors($value, $schema[1], $at);
    }
    if (($schema[0] ?? null) === 'list' || ($schema[0] ?? null) === 'array3') {
        if (!is_array($value) || !array_is_list($value)) {
            return ["{$at}: expected a list"];
        }
        if ($schema[0] === 'array3' && count($value) !== 3) {
            return ["{$at}: expected exactly 3 items"];
        }
        $errors = [];
        foreach ($value as $i => $item) {
            $errors = array_merge($errors, schema_errors($item, $schema[1], "{$at}[{$i}]"));
        }
        return $errors;
    }
    if (!is_array($value) || (array_is_list($value) && $value !== [])) {
        return ["{$at}: expected an object"];
    }
    $errors = [];
    foreach (array_diff(array_keys($value), array_keys($schema)) as $extra) {
        $errors[] = "{$at}.{$extra}: unexpected field";
    }
    foreach ($schema as $field => $inner) {
        if (!array_key_exists($field, $value)) {
            $errors[] = "{$at}.{$field}: missing";
        } else {
            $errors = array_merge($errors, schema_errors($value[$field], $inner, "{$at}.{$field}"));
        }
    }
    return $errors;
}

/* ---------------------------------------------------------------------------------------------
 * Running the agent
 * ------------------------------------------------------------------------------------------- */

final class Run
{
    public function __construct(
        public readonly string $stdout,
        public readonly string $stderr,
        public readonly int $status,
    ) {
    }

    /** The stdout lines, or null when stdout is not a sequence of whole lines. */
    public function lines(): ?array
    {
        if ($this->stdout === '') {
            return [];
        }
        if (!str_ends_with($this->stdout, "\n")) {
            return null;
        }
        return explode("\n", substr($this->stdout, 0, -1));
    }

    /** Every stdout line decoded as a response; null when any line is not a valid response. */
    public function responses(): ?array
    {
        $lines = $this->lines();
        if ($lines === null) {
            return null;
        }
        $responses = [];
        foreach ($lines as $line) {
            $response = decode_response($line);
            if ($response === null) {
                return null;
            }
            $responses[] = $response;
        }
        return $responses;
    }

    public function describe(): string
    {
        return sprintf(
            'exit %d, stdout %s, stderr %s',
            $this->status,
            json_encode(substr($this->stdout, 0, 400)),
            json_encode(substr($this->stderr, 0, 400)),
        );
    }
}

/** A response line as the server's `Response` type accepts it, or null. */
function decode_response(string $line): ?array
{
    $r = json_decode($line, true, 512, JSON_BIGINT_AS_STRING);
    if (!is_array($r) || !array_key_exists('id', $r) || !is_bool($r['ok'] ?? null)) {
        return null;
    }
    if (!($r['id'] === null || (is_int($r['id']) && $r['id'] >= 0) || (is_string($r['id']) && ctype_digit($r['id'])))) {
        return null;
    }
    $keys = array_keys($r);
    sort($keys);
    if ($r['ok']) {
        return $keys === ['id', 'ok', 'result'] ? $r : null;
    }
    $error = $r['error'] ?? null;
    $valid = $keys === ['error', 'id', 'ok'] && is_array($error)
        && in_array($error['code'] ?? null, ERROR_CODES, true) && is_string($error['message'] ?? null)
        && array_diff(array_keys($error), ['code', 'message', 'details']) === [];
    return $valid ? $r : null;
}

function agent_env(string $root, array $extra): array
{
    $env = getenv();
    unset($env['MUDMAP_STUB_API'], $env['MUDMAP_STUB_FAULT'], $env['MUDMAP_AGENT_EUID']);
    // The agent runs as root on a firewall; the tests need not: uid 0 unless a test says otherwise.
    return array_merge($env, ['MUDMAP_AGENT_ROOT' => $root, 'MUDMAP_AGENT_EUID' => '0'], $extra);
}

/** Run the agent to completion, feeding $input to stdin while draining stdout and stderr. */
function run_agent(string $root, array $args, string $input, array $env = []): Run
{
    $process = proc_open(
        array_merge([PHP_BINARY], PHP_ARGS, [AGENT], $args),
        [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']],
        $pipes,
        null,
        agent_env($root, $env),
    );
    if (!is_resource($process)) {
        throw new RuntimeException('cannot start the agent');
    }
    foreach ($pipes as $pipe) {
        stream_set_blocking($pipe, false);
    }
    $output = [1 => '', 2 => ''];
    $offset = 0;
    $stdin_open = true;
    if ($input === '') {
        fclose($pipes[0]);
        $stdin_open = false;
    }
    $deadline = microtime(true) + TIMEOUT;
    while (true) {
        $read = array_filter([1 => $pipes[1], 2 => $pipes[2]], static fn ($p) => !feof($p));
        $write = $stdin_open ? [$pipes[0]] : [];
        if ($read === [] && $write === []) {
            break;
        }
        if (microtime(true) > $deadline) {
            proc_terminate($process, 9);
            throw new RuntimeException('the agent did not finish within ' . TIMEOUT . ' s');
        }
        $except = null;
        if (stream_select($read, $write, $except, 1) === false) {
            break;
        }
        foreach ($read as $pipe) {
            $output[$pipe === $pipes[1] ? 1 : 2] .= (string) fread($pipe, 1 << 20);
        }
        if ($write !== []) {
            $n = @fwrite($pipes[0], substr($input, $offset, 1 << 16));
            $offset += $n === false ? 0 : $n;
            if ($n === false || $offset >= strlen($input)) {
                fclose($pipes[0]); // done, or the agent stopped reading (call mode)
                $stdin_open = false;
            }
        }
    }
    fclose($pipes[1]);
    fclose($pipes[2]);
    return new Run($output[1], $output[2], proc_close($process));
}

/** A serve-mode agent driven one request at a time. */
final class Session
{
    private $process;
    private array $pipes = [];
    private string $buffer = '';

    public function __construct(string $root, array $env = [])
    {
        $this->process = proc_open(
            array_merge([PHP_BINARY], PHP_ARGS, [AGENT, 'serve']),
            [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']],
            $this->pipes,
            null,
            agent_env($root, $env),
        );
        stream_set_blocking($this->pipes[1], false);
    }

    public function send(string $line): void
    {
        fwrite($this->pipes[0], $line . "\n");
        fflush($this->pipes[0]);
    }

    /** The next response line, or null if none arrives within $timeout seconds. */
    public function receive(float $timeout = 10.0): ?string
    {
        $deadline = microtime(true) + $timeout;
        while (($pos = strpos($this->buffer, "\n")) === false) {
            $left = $deadline - microtime(true);
            if ($left <= 0 || feof($this->pipes[1])) {
                return null;
            }
            $read = [$this->pipes[1]];
            $write = $except = null;
            if (stream_select($read, $write, $except, 0, (int) ($left * 1e6)) > 0) {
                $this->buffer .= (string) fread($this->pipes[1], 1 << 20);
            }
        }
        $line = substr($this->buffer, 0, $pos);
        $this->buffer = substr($this->buffer, $pos + 1);
        return $line;
    }

    /** Close stdin and wait for the agent to exit. */
    public function finish(): Run
    {
        fclose($this->pipes[0]);
        stream_set_blocking($this->pipes[1], true);
        $stdout = $this->buffer . stream_get_contents($this->pipes[1]);
        $stderr = stream_get_contents($this->pipes[2]);
        fclose($this->pipes[1]);
        fclose($this->pipes[2]);
        return new Run($stdout, (string) $stderr, proc_close($this->process));
    }
}

/* ---------------------------------------------------------------------------------------------
 * Fixture copies and helpers
 * ------------------------------------------------------------------------------------------- */

$temp_roots = [];

function fresh_root(): string
{
    global $temp_roots;
    $root = sys_get_temp_dir() . '/mudmap-agent-test-' . bin2hex(random_bytes(6));
    copy_tree(FIXTURE, $root);
    $temp_roots[] = $root;
    return $root;
}

function copy_tree(string $from, string $to): void
{
    mkdir($to, 0755, true);
    foreach (new DirectoryIterator($from) as $entry) {
        if ($entry->isDot()) {
            continue;
        }
        $target = "{$to}/{$entry->getFilename()}";
        $entry->isDir() ? copy_tree($entry->getPathname(), $target) : copy($entry->getPathname(), $target);
    }
}

function remove_tree(string $dir): void
{
    $items = new RecursiveIteratorIterator(
        new RecursiveDirectoryIterator($dir, FilesystemIterator::SKIP_DOTS),
        RecursiveIteratorIterator::CHILD_FIRST,
    );
    foreach ($items as $item) {
        $item->isDir() ? rmdir($item->getPathname()) : unlink($item->getPathname());
    }
    rmdir($dir);
}

register_shutdown_function(static function () use (&$temp_roots): void {
    foreach ($temp_roots as $root) {
        if (is_dir($root)) {
            remove_tree($root);
        }
    }
});

/** path => sha256 of every file under $root except tmp/ (where pfSense's lock files live). */
function tree_digest(string $root): array
{
    $digest = [];
    $files = new RecursiveIteratorIterator(new RecursiveDirectoryIterator($root, FilesystemIterator::SKIP_DOTS));
    foreach ($files as $file) {
        $path = substr($file->getPathname(), strlen($root) + 1);
        if (!str_starts_with($path, 'tmp/')) {
            $digest[$path] = hash_file('sha256', $file->getPathname());
        }
    }
    ksort($digest);
    return $digest;
}

function request(int|string $id, string $method, mixed $params = null, int $v = 1): string
{
    $request = ['v' => $v, 'id' => $id, 'method' => $method];
    if ($params !== null) {
        $request['params'] = $params;
    }
    return json_encode($request);
}

/** A valid hello request padded to exactly $length bytes. */
function padded_request(int $id, int $length): string
{
    $shell = sprintf('{"v":1,"id":%d,"method":"hello","params":{"pad":""}}', $id);
    return substr_replace($shell, str_repeat('x', $length - strlen($shell)), -3, 0);
}

$failures = 0;
$checks = 0;

function check(string $name, bool $ok, string $detail = ''): void
{
    global $failures, $checks;
    $checks++;
    echo ($ok ? 'ok   ' : 'FAIL ') . $name . ($ok || $detail === '' ? '' : "\n     {$detail}") . "\n";
    if (!$ok) {
        $failures++;
    }
}

/** Run one request in call mode and return [run, the single response or null]. */
function call_once(string $root, string $line, array $env = []): array
{
    $run = run_agent($root, ['call'], $line . "\n", $env);
    $responses = $run->responses();
    return [$run, $responses !== null && count($responses) === 1 ? $responses[0] : null];
}

function error_code(?array $response): ?string
{
    return $response['error']['code'] ?? null;
}

/* ---------------------------------------------------------------------------------------------
 * The checks
 * ------------------------------------------------------------------------------------------- */

if (!extension_loaded('dom')) {
    fwrite(STDERR, "the stub pfSense environment needs PHP's DOM extension (apt-get install php-xml)\n");
    exit(1);
}

$root = fresh_root();
$config_file = "{$root}/cf/conf/config.xml";
$config_bytes = file_get_contents($config_file);
$config_hash = 'sha256:' . hash('sha256', $config_bytes);
$tree_before = tree_digest($root);

echo "# hello\n";
[$run, $r] = call_once($root, request(1, 'hello', ['client' => 'mudmap/test', 'protocols' => [1]]));
check('call hello: exit 0, one response line, nothing on stderr', $run->status === 0 && $r !== null && $run->stderr === '', $run->describe());
check('hello: id echoed, ok', ($r['id'] ?? null) === 1 && ($r['ok'] ?? false) === true);
$hello = $r['result'] ?? null;
$errors = schema_errors($hello, HELLO);
check('hello: result has exactly the Hello fields and types', $errors === [], implode('; ', $errors));
check(
    'hello: values from the device (hostname.domain, /etc/version without -RELEASE, CE)',
    ($hello['hostname'] ?? null) === 'fw-test-01.example.org'
        && ($hello['pfsense'] ?? null) === ['version' => '2.7.2', 'edition' => 'CE']
        && ($hello['platform'] ?? null) === 'pfSense',
    json_encode($hello),
);
check(
    'hello: agent_version 1.2.0, protocol 1, capabilities as the simulator\'s (same methods, same order), euid 0',
    ($hello['agent_version'] ?? null) === '1.2.0' && ($hello['protocol'] ?? null) === 1
        && ($hello['capabilities'] ?? null) === CAPABILITIES && ($hello['euid'] ?? null) === 0,
    json_encode($hello['capabilities'] ?? null),
);
[, $r] = call_once($root, request(2, 'hello', ['protocols' => [7]]));
check('hello offering only protocol 7: unsupported_version', error_code($r) === 'unsupported_version' && $r['id'] === 2, json_encode($r));
[, $r] = call_once($root, request(3, 'hello', ['protocols' => []]));
check('hello offering no protocol: unsupported_version', error_code($r) === 'unsupported_version', json_encode($r));
[, $r] = call_once($root, request(4, 'hello'));
check('hello without params: protocols default to [1]', ($r['ok'] ?? false) === true, json_encode($r));
[, $r] = call_once($root, request(5, 'hello', ['protocols' => [2, 1]]));
check('hello offering [2, 1]: protocol 1', ($r['result']['protocol'] ?? null) === 1, json_encode($r));

echo "# status\n";
[$run, $r] = call_once($root, request(10, 'status', new stdClass()));
$status = $r['result'] ?? null;
check('call status: exit 0, ok', $run->status === 0 && ($r['ok'] ?? false) === true, $run->describe());
$errors = schema_errors($status, STATUS);
check('status: result has exactly the Status fields and types', $errors === [], implode('; ', $errors));
check('status: uptime from kern.boottime', abs(($status['uptime_secs'] ?? 0) - (time() - BOOTTIME)) <= 5, json_encode($status['uptime_secs'] ?? null));
check('status: CPU usage from two kern.cp_time samples (stub: 15 %)', abs(($status['cpu']['usage_pct'] ?? -1) - 15.0) < 0.5, json_encode($status['cpu'] ?? null));
check('status: 4 cores (kern.smp.cpus)', ($status['cpu']['cores'] ?? null) === 4);
check(
    'status: hostname, platform and DNS servers from System > General Setup',
    ($status['hostname'] ?? null) === 'fw-test-01.example.org' && ($status['platform'] ?? null) === 'pfSense'
        && ($status['dns_servers'] ?? null) === ['1.1.1.1', '9.9.9.9'],
    json_encode([$status['hostname'] ?? null, $status['dns_servers'] ?? null])
);
check(
    'status: memory as pfSense counts it (pages x page size; inactive+laundry+free available)',
    ($status['memory'] ?? null) === ['total_bytes' => 1048576 * 4096, 'used_bytes' => (1048576 - 710000) * 4096],
    json_encode($status['memory'] ?? null),
);
$disk = $status['disks'][0] ?? null;
check('status: root file system figures from df', count($status['disks'] ?? []) === 1 && $disk['mount'] === '/' && $disk['total_bytes'] > 0 && $disk['used_bytes'] <= $disk['total_bytes'], json_encode($status['disks'] ?? null));
$interfaces = array_column($status['interfaces'] ?? [], null, 'name');
check('status: every configured interface, in config order', array_keys($interfaces) === ['wan', 'lan', 'opt1', 'opt2'], json_encode(array_keys($interfaces)));
check(
    'status: wan as get_interface_info() reports it',
    ($interfaces['wan'] ?? null) === [
        'name' => 'wan', 'device' => 'igb0', 'description' => 'WAN', 'status' => 'up',
        'media' => '1000baseT <full-duplex>', 'ipv4' => '198.51.100.10/24', 'ipv6' => '2001:db8:10::10/64',
        'rx_bytes' => 123456789012, 'tx_bytes' => 98765432109,
    ],
    json_encode($interfaces['wan'] ?? null),
);
$field = static fn (string $if, string $key): mixed => array_key_exists($key, $interfaces[$if] ?? []) ? $interfaces[$if][$key] : 'missing';
check(
    'status: link states passed through, no address gives null (opt1 no carrier, opt2 disabled DHCP)',
    $field('opt1', 'status') === 'no carrier' && $field('opt2', 'status') === 'down'
        && $field('opt2', 'ipv4') === null && $field('lan', 'ipv6') === null
        && $field('opt2', 'description') === 'Guest Wi-Fi',
    json_encode([$interfaces['opt1'] ?? null, $interfaces['opt2'] ?? null]),
);
$gateways = array_column($status['gateways'] ?? [], null, 'name');
check(
    'status: gateway states mapped to online/degraded/down/unknown (delay => degraded, force_down => down, pending => unknown)',
    array_map(static fn ($g) => $g['status'], $gateways) === [
        'WAN_GW' => 'online', 'WAN_V6' => 'online', 'DMZ_GW' => 'degraded', 'LAN_UPLINK' => 'down', 'BACKUP_GW' => 'unknown',
    ],
    json_encode(array_map(static fn ($g) => $g['status'], $gateways)),
);
check(
    'status: dpinger figures parsed from "4.2ms" / "0.0%"',
    ($gateways['WAN_GW'] ?? null) === [
        'name' => 'WAN_GW', 'address' => '198.51.100.1', 'monitor' => '198.51.100.1', 'status' => 'online',
        'rtt_ms' => 4.2, 'rttsd_ms' => 0.4, 'loss_pct' => 0.0,
    ] && ($gateways['DMZ_GW']['monitor'] ?? null) === '172.16.10.253' && ($gateways['DMZ_GW']['rtt_ms'] ?? null) === 250.5,
    json_encode([$gateways['WAN_GW'] ?? null, $gateways['DMZ_GW'] ?? null]),
);
$services = [];
foreach ($status['services'] ?? [] as $service) {
    $services[$service['name']] = $service;
}
check(
    'status: services running/stopped as get_service_status() says',
    ($services['unbound']['status'] ?? null) === 'running' && ($services['openvpn']['status'] ?? null) === 'stopped'
        && count($status['services'] ?? []) === 8,
    json_encode($status['services'] ?? null),
);
check(
    'status: service descriptions unescaped, package services described by get_pkg_descr()',
    ($services['openvpn']['description'] ?? null) === 'OpenVPN server: Road warriors & "staff"'
        && ($services['haproxy']['description'] ?? null) === 'The Reliable, High Performance TCP/HTTP(S) Load Balancer.',
    json_encode([$services['openvpn'] ?? null, $services['haproxy'] ?? null]),
);
check('status: config_hash is the SHA-256 of config.xml', ($status['config_hash'] ?? null) === $config_hash, json_encode($status['config_hash'] ?? null));
check('status: every section read, errors empty', ($status['errors'] ?? null) === [], json_encode($status['errors'] ?? null));

echo "# config.get\n";
[$run, $r] = call_once($root, request(20, 'config.get'));
$document = $r['result'] ?? null;
check('call config.get: exit 0, ok', $run->status === 0 && ($r['ok'] ?? false) === true, $run->describe());
$errors = schema_errors($document, CONFIG_DOCUMENT);
check('config.get: result has exactly the ConfigDocument fields', $errors === [], implode('; ', $errors));
check('config.get: xml is config.xml byte for byte (tabs, CDATA, UTF-8)', ($document['xml'] ?? null) === $config_bytes);
check(
    'config.get: hash is "sha256:" + hex SHA-256 of those bytes, as status reports it',
    ($document['hash'] ?? null) === $config_hash && strlen($config_hash) === 71 && $document['hash'] === ($status['config_hash'] ?? null),
);

echo "# errors (call mode)\n";
$expect_error = static function (string $name, string $line, string $code, mixed $id, int $exit) use ($root): void {
    [$run, $r] = call_once($root, $line);
    check(
        "{$name}: {$code}, id " . json_encode($id) . ", exit {$exit}",
        error_code($r) === $code && array_key_exists('id', $r ?? []) && $r['id'] === $id && $run->status === $exit,
        $run->describe(),
    );
};
$expect_error('malformed JSON', '{"v":1,"id":30,"method":', 'bad_request', null, 2);
$expect_error('not a JSON object', '[1,31,"status"]', 'bad_request', null, 2);
$expect_error('empty line', '', 'bad_request', null, 2);
$expect_error('method not a string (id salvaged, as the simulator)', '{"id":4,"method":5}', 'bad_request', 4, 2);
$expect_error('missing v', '{"id":32,"method":"status"}', 'bad_request', 32, 2);
$expect_error('v not an integer', '{"v":"1","id":33,"method":"status"}', 'bad_request', 33, 2);
$expect_error('id a string', '{"v":1,"id":"34","method":"status"}', 'bad_request', null, 2);
$expect_error('id negative', '{"v":1,"id":-1,"method":"status"}', 'bad_request', null, 2);
$expect_error('id a float', '{"v":1,"id":1.5,"method":"status"}', 'bad_request', null, 2);
$expect_error('id above u64', '{"v":1,"id":18446744073709551616,"method":"status"}', 'bad_request', null, 2);
$expect_error('unknown method', request(35, 'rules.add', ['rule' => []]), 'unknown_method', 35, 0);
$expect_error('wrong protocol version', request(36, 'status', null, 2), 'unsupported_version', 36, 0);
$expect_error('invalid UTF-8', "{\"v\":1,\"id\":37,\"method\":\"st\xC3\x28tus\"}", 'bad_request', null, 2);

$big = '{"v":1,"id":18446744073709551615,"method":"hello"}';
$run = run_agent($root, ['call'], $big . "\n");
check('id 2^64-1 (above PHP_INT_MAX) echoed exactly', str_starts_with($run->stdout, '{"id":18446744073709551615,"ok":true,'), $run->describe());

$line = padded_request(38, MAX_FRAME + 1);
$run = run_agent($root, ['call'], $line . "\n");
$responses = $run->responses();
check(
    'request line of 16 MiB + 1 byte: frame_too_large, id null, exit 2',
    $responses !== null && count($responses) === 1 && error_code($responses[0]) === 'frame_too_large'
        && $responses[0]['id'] === null && $run->status === 2,
    $run->describe(),
);
$line = padded_request(39, MAX_FRAME);
[$run, $r] = call_once($root, $line);
check('request line of exactly 16 MiB: answered', ($r['id'] ?? null) === 39 && ($r['ok'] ?? false) === true, $run->describe());

$run = run_agent($root, ['call'], '');
check('call with no input: exit 2, nothing on stdout', $run->status === 2 && $run->stdout === '', $run->describe());
$run = run_agent($root, ['call'], request(40, 'hello'));
check('call with a line lacking its newline: not a message, exit 2, nothing on stdout', $run->status === 2 && $run->stdout === '', $run->describe());
[$run, $r] = call_once($root, request(41, 'hello') . "\r");
check('CRLF line ending: the \\r is JSON whitespace', ($r['ok'] ?? false) === true, $run->describe());

echo "# serve mode\n";
$script = [
    request(50, 'hello', ['client' => 'mudmap/test', 'protocols' => [1]]),
    'this is not json',
    request(51, 'status'),
    request(52, 'no.such.method'),
    padded_request(53, MAX_FRAME + 200000), // spans several reads past the limit
    request(54, 'status', null, 9),
    '{"id":55,"method":[]}',
    request(56, 'config.get'),
    '',
    request(57, 'hello'),
];
$run = run_agent($root, ['serve'], implode("\n", $script) . "\n");
$responses = $run->responses() ?? [];
$got = array_map(static fn ($r) => [$r['id'], $r['ok'] ? 'ok' : $r['error']['code']], $responses);
check('serve: every stdout line is one whole response', $run->responses() !== null, $run->describe());
check(
    'serve: one answer per line, in order, continuing after each error (no extra answer for the oversized line\'s tail)',
    $got === [
        [50, 'ok'], [null, 'bad_request'], [51, 'ok'], [52, 'unknown_method'], [null, 'frame_too_large'],
        [54, 'unsupported_version'], [55, 'bad_request'], [56, 'ok'], [null, 'bad_request'], [57, 'ok'],
    ],
    json_encode($got),
);
check('serve: exit 0 at end of input', $run->status === 0, $run->describe());
check('serve: config.get in a session matches the file', ($responses[7]['result']['xml'] ?? null) === $config_bytes);

$session = new Session($root);
$session->send(request(60, 'hello'));
$first = decode_response((string) $session->receive());
$session->send(request(61, 'config.get'));
$second = decode_response((string) $session->receive());
$run = $session->finish();
check(
    'serve: each answer is flushed before the next request is sent',
    ($first['id'] ?? null) === 60 && ($second['id'] ?? null) === 61 && $run->status === 0 && $run->stdout === '',
    json_encode([$first, $second]) . ' ' . $run->describe(),
);

$run = run_agent($root, ['serve'], request(62, 'hello') . "\n" . '{"v":1,"id":63,"meth');
$responses = $run->responses();
check(
    'serve: input ending inside a line: earlier answers stand, the fragment is dropped, exit 0',
    $responses !== null && count($responses) === 1 && $responses[0]['id'] === 62 && $run->status === 0
        && str_contains($run->stderr, 'partial line'),
    $run->describe(),
);

check('no request changed the device: every file outside tmp/ is unchanged', tree_digest($root) === $tree_before);

echo "# a long-lived session sees out-of-band changes\n";
$changed_root = fresh_root();
$session = new Session($changed_root);
$session->send(request(70, 'status'));
$before = decode_response((string) $session->receive());
$edited = str_replace('<hostname>fw-test-01</hostname>', '<hostname>fw-renamed</hostname>', $config_bytes);
file_put_contents("{$changed_root}/cf/conf/config.xml", $edited);
$session->send(request(71, 'hello'));
$renamed = decode_response((string) $session->receive());
$session->send(request(72, 'status'));
$after = decode_response((string) $session->receive());
$session->finish();
check('hello after an edit reports the new hostname', ($renamed['result']['hostname'] ?? null) === 'fw-renamed.example.org', json_encode($renamed));
check(
    'status after an edit reports the new config hash',
    ($before['result']['config_hash'] ?? null) === $config_hash
        && ($after['result']['config_hash'] ?? null) === 'sha256:' . hash('sha256', $edited),
);

echo "# output discipline and failures\n";
[$run, $r] = call_once($root, request(80, 'status'), ['MUDMAP_STUB_FAULT' => 'noise']);
check(
    'pfSense code printing and warning (with display_errors=stdout): stdout stays protocol-only, stderr gets it',
    ($r['ok'] ?? false) === true && str_contains($run->stderr, 'noise on stdout') && str_contains($run->stderr, 'Undefined array key'),
    $run->describe(),
);

$run = run_agent($root, ['serve'], implode("\n", [request(81, 'hello'), request(82, 'status'), request(83, 'hello')]) . "\n", ['MUDMAP_STUB_FAULT' => 'exit']);
$responses = $run->responses();
check(
    'pfSense code calling exit() inside status: that request answered internal, agent exits 1',
    $responses !== null && count($responses) === 2 && ($responses[0]['ok'] ?? false) === true
        && $responses[1]['id'] === 82 && error_code($responses[1]) === 'internal' && $run->status === 1,
    $run->describe(),
);

$run = run_agent($root, ['serve'], implode("\n", [request(84, 'hello'), request(85, 'status')]) . "\n", ['MUDMAP_STUB_FAULT' => 'fatal']);
$responses = $run->responses();
check(
    'fatal PHP error inside status (with display_errors=stdout): answered internal, message on stderr, exit 1',
    $responses !== null && count($responses) === 2 && $responses[1]['id'] === 85 && error_code($responses[1]) === 'internal'
        && str_contains($responses[1]['error']['message'], 'memory size') && str_contains($run->stderr, 'Fatal error')
        && $run->status === 1,
    $run->describe(),
);

$empty_root = sys_get_temp_dir() . '/mudmap-agent-test-' . bin2hex(random_bytes(6));
mkdir($empty_root);
$temp_roots[] = $empty_root;
$run = run_agent($empty_root, ['serve'], request(90, 'hello') . "\n");
check('no pfSense PHP environment (no /etc/inc/config.inc): exit 3, nothing on stdout', $run->status === 3 && $run->stdout === '' && str_contains($run->stderr, 'config.inc'), $run->describe());
$run = run_agent('relative/path', ['call'], request(91, 'hello') . "\n");
check('MUDMAP_AGENT_ROOT not an absolute directory: exit 3', $run->status === 3 && $run->stdout === '', $run->describe());
foreach ([[], ['frobnicate'], ['serve', 'extra']] as $args) {
    $run = run_agent($root, $args, request(92, 'hello') . "\n");
    check('bad arguments ' . json_encode($args) . ': exit 3, nothing on stdout', $run->status === 3 && $run->stdout === '', $run->describe());
}
$broken_root = fresh_root();
file_put_contents("{$broken_root}/cf/conf/config.xml", "not xml\n");
$run = run_agent($broken_root, ['call'], request(93, 'hello') . "\n");
check('pfSense exits while loading (corrupt config.xml): exit 3, nothing on stdout', $run->status === 3 && $run->stdout === '', $run->describe());

$huge_root = fresh_root();
$padding = "\t<!-- " . str_repeat('p', MAX_FRAME) . " -->\n";
file_put_contents("{$huge_root}/cf/conf/config.xml", str_replace("</pfsense>\n", $padding . "</pfsense>\n", $config_bytes));
[$run, $r] = call_once($huge_root, request(94, 'config.get'));
check('config.xml too big for one 16 MiB line: config.get answers frame_too_large with its id', error_code($r) === 'frame_too_large' && ($r['id'] ?? null) === 94, $run->describe());

echo "# older and newer pfSense PHP APIs\n";
$reference = ['interfaces' => $status['interfaces'] ?? null, 'gateways' => $status['gateways'] ?? null, 'services' => $status['services'] ?? null];
foreach (['2.6' => 'only $config and $g, no config_get_path()/g_get()', '2.8' => 'config_read_file(), no parse_config()'] as $api => $what) {
    $run = run_agent($root, ['serve'], request(100, 'hello') . "\n" . request(101, 'status') . "\n", ['MUDMAP_STUB_API' => $api]);
    $responses = $run->responses() ?? [];
    $same = [
        'interfaces' => $responses[1]['result']['interfaces'] ?? [],
        'gateways' => $responses[1]['result']['gateways'] ?? [],
        'services' => $responses[1]['result']['services'] ?? [],
    ];
    check(
        "pfSense {$api} API ({$what}): same hello and status",
        count($responses) === 2 && ($responses[0]['result'] ?? null) === $hello
            && schema_errors($responses[1]['result'] ?? null, STATUS) === [] && $same === $reference,
        $run->describe(),
    );
}
$run = run_agent($root, ['call'], request(102, 'status') . "\n", ['MUDMAP_STUB_API' => 'bare']);
$bare = ($run->responses() ?? [])[0]['result'] ?? null;
check('status helpers missing: status still answered with the Status shape', $run->status === 0 && schema_errors($bare, STATUS) === [], $run->describe());
check(
    'status helpers missing: uptime, CPU usage and cores, memory null; interfaces, gateways, services empty; disks still read',
    is_array($bare) && $bare['uptime_secs'] === null && $bare['cpu']['usage_pct'] === null && $bare['cpu']['cores'] === null
        && $bare['memory'] === null
        && ($bare['interfaces'] ?? null) === [] && ($bare['gateways'] ?? null) === [] && ($bare['services'] ?? null) === []
        && count($bare['disks'] ?? []) === 1 && count($bare['cpu']['load'] ?? []) === 3,
    json_encode($bare),
);
$bare_errors = array_column($bare['errors'] ?? [], 'message', 'section');
check(
    'status helpers missing: each unread section in errors with its cause (the missing function)',
    array_keys($bare_errors) === ['uptime', 'cpu', 'memory', 'interfaces', 'gateways', 'services']
        && str_contains($bare_errors['uptime'], 'get_sysctl()') && str_contains($bare_errors['interfaces'], 'get_interface_info()')
        && str_contains($bare_errors['gateways'], 'return_gateways_array()') && str_contains($bare_errors['services'], 'get_services()'),
    json_encode($bare['errors'] ?? null),
);
[$run, $r] = call_once($root, request(103, 'status'), ['MUDMAP_STUB_FAULT' => 'sysctl_empty']);
$empty = $r['result'] ?? null;
$empty_errors = array_column($empty['errors'] ?? [], 'message', 'section');
check(
    'sysctl reporting nothing: uptime, CPU usage and cores, memory null, each with what sysctl did not report; the rest read',
    schema_errors($empty, STATUS) === [] && $empty['uptime_secs'] === null && $empty['cpu']['usage_pct'] === null
        && $empty['cpu']['cores'] === null && $empty['memory'] === null
        && $empty_errors === [
            'uptime' => 'sysctl did not report kern.boottime',
            'cpu' => 'sysctl did not report kern.cp_time; sysctl did not report kern.smp.cpus or hw.ncpu',
            'memory' => 'sysctl did not report vm.stats.vm.v_page_count',
        ]
        && count($empty['interfaces']) === 4 && count($empty['services']) === 8,
    $run->describe(),
);

echo "# access.ensure / access.remove\n";
/** A base64 ed25519 public key blob (68 characters), derived from $seed. */
function ed25519_key(string $seed): string
{
    return base64_encode("\0\0\0\x0bssh-ed25519\0\0\0\x20" . hash('sha256', $seed, true));
}
function access_line(string $key, string $comment, string $command = DISPATCHER, string $options = KEY_OPTIONS): string
{
    return 'command="' . $command . '"' . $options . " ssh-ed25519 {$key} {$comment}";
}
/** The decoded authorized keys of the uid-0 user in config.xml ('' when none). */
function admin_keys(string $root): ?string
{
    $doc = new DOMDocument();
    $doc->load("{$root}/cf/conf/config.xml");
    foreach ((new DOMXPath($doc))->query('/pfsense/system/user[uid="0"]') as $node) {
        $keys = (new DOMXPath($doc))->query('authorizedkeys', $node)->item(0);
        return $keys === null ? '' : base64_decode($keys->textContent);
    }
    return null;
}
function root_keys_file(string $root): ?string
{
    $file = "{$root}/root/.ssh/authorized_keys";
    return is_file($file) ? (string) file_get_contents($file) : null;
}
$instance = 'a1b2c3d4-e5f6-4789-abcd-ef0123456789';
$other_instance = '7d1c0000-1111-4222-8333-944455556666';
$device = '0193aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee';
$line_a = access_line(ed25519_key('device key 1'), "mudmap:{$instance}:{$device}");
$line_a2 = access_line(ed25519_key('device key 2, re-activated'), "mudmap:{$instance}:{$device}");
$line_b = access_line(ed25519_key('another Mudmap'), "mudmap:{$other_instance}:fw-7");
$acc_root = fresh_root();
$admin_own = admin_keys($acc_root);
check('fixture: admin (uid 0) has keys of its own, no trailing newline, CRLF as a browser sends', is_string($admin_own) && str_contains($admin_own, "admin@laptop\r\nssh-ed25519") && !str_ends_with($admin_own, "\n"), json_encode($admin_own));
$before = tree_digest($acc_root);
$bad_lines = [
    'another command' => access_line(ed25519_key('x'), 'mudmap:i:d', '/bin/sh -c true'),
    'an extra option' => access_line(ed25519_key('x'), 'mudmap:i:d', DISPATCHER, KEY_OPTIONS . ',no-user-rc'),
    'a missing option' => access_line(ed25519_key('x'), 'mudmap:i:d', DISPATCHER, ',no-pty,no-port-forwarding,no-agent-forwarding'),
    'options in another order' => access_line(ed25519_key('x'), 'mudmap:i:d', DISPATCHER, ',no-port-forwarding,no-pty,no-agent-forwarding,no-X11-forwarding'),
    'an rsa key' => str_replace('ssh-ed25519 ', 'ssh-rsa ', access_line(ed25519_key('x'), 'mudmap:i:d')),
    'a second line' => $line_a . "\n" . $line_b,
    'a trailing newline' => $line_a . "\n",
    'a comment without device' => access_line(ed25519_key('x'), 'mudmap:i'),
    'a comment of another tool' => access_line(ed25519_key('x'), 'other:i:d'),
    'a comment with a space' => access_line(ed25519_key('x'), 'mudmap:i:d extra'),
    'a key blob of the wrong length' => access_line(base64_encode("\0\0\0\x0bssh-ed25519\0\0\0\x20" . str_repeat('k', 35)), 'mudmap:i:d'),
    'a 68-character blob that is no ed25519 key' => access_line(base64_encode("\0\0\0\x0bssh-ed25518\0\0\0\x20" . str_repeat('k', 32)), 'mudmap:i:d'),
    'a key that is not base64' => access_line(str_repeat('*', 68), 'mudmap:i:d'),
];
foreach ($bad_lines as $what => $bad) {
    [$run, $r] = call_once($acc_root, request(200, 'access.ensure', ['authorized_key' => $bad]));
    check("access.ensure with {$what}: invalid_params, nothing written", error_code($r) === 'invalid_params' && tree_digest($acc_root) === $before, $run->describe());
}
foreach (['no params' => null, 'a number' => ['authorized_key' => 5]] as $what => $params) {
    [$run, $r] = call_once($acc_root, request(201, 'access.ensure', $params));
    check("access.ensure with {$what}: invalid_params", error_code($r) === 'invalid_params' && tree_digest($acc_root) === $before, $run->describe());
}

[$run, $r] = call_once($acc_root, request(202, 'access.ensure', ['authorized_key' => $line_a]));
$xml = (string) file_get_contents("{$acc_root}/cf/conf/config.xml");
check('access.ensure: created, no others, exactly the AccessEnsured fields', ($r['result']['created'] ?? null) === true && ($r['result']['others'] ?? null) === [] && schema_errors($r['result'] ?? null, ACCESS_ENSURED) === [], $run->describe());
check('access.ensure: config_hash is the hash of config.xml after the write', ($r['result']['config_hash'] ?? null) === 'sha256:' . hash('sha256', $xml));
check('access.ensure: appended after admin\'s own keys (kept byte for byte), a newline added first', admin_keys($acc_root) === $admin_own . "\n" . $line_a . "\n", json_encode(admin_keys($acc_root)));
check('access.ensure: local_user_set() wrote root\'s authorized_keys', root_keys_file($acc_root) === $admin_own . "\n" . $line_a . "\n", json_encode(root_keys_file($acc_root)));
check('access.ensure: the revision names the device, Mudmap\'s lock was taken', str_contains($xml, "mudmap:{$instance}:{$device}") && str_contains($xml, '<description>Mudmap: ') && is_file("{$acc_root}/tmp/mudmap.lock"));
[$run, $r] = call_once($acc_root, request(203, 'access.ensure', ['authorized_key' => $line_b]));
check('access.ensure of another Mudmap\'s line: created, the first listed in others', ($r['result']['created'] ?? null) === true && ($r['result']['others'] ?? null) === ["mudmap:{$instance}:{$device}"], $run->describe());
[$run, $r] = call_once($acc_root, request(204, 'access.ensure', ['authorized_key' => $line_a2]));
check('access.ensure of the same device with a new key: created false, others lists the other instance', ($r['result']['created'] ?? null) === false && ($r['result']['others'] ?? null) === ["mudmap:{$other_instance}:fw-7"], $run->describe());
check('access.ensure again: the line replaced in place, the other instance\'s line and admin\'s keys untouched', admin_keys($acc_root) === $admin_own . "\n" . $line_a2 . "\n" . $line_b . "\n" && root_keys_file($acc_root) === admin_keys($acc_root), json_encode(admin_keys($acc_root)));
[$run, $r] = call_once($acc_root, request(205, 'access.ensure', ['authorized_key' => $line_a2]), ['MUDMAP_STUB_API' => '2.6']);
check('access.ensure on the 2.6 API (no config_set_path), same line again: created false, nothing else changed', ($r['result']['created'] ?? null) === false && admin_keys($acc_root) === $admin_own . "\n" . $line_a2 . "\n" . $line_b . "\n", $run->describe());
[$run, $r] = call_once($acc_root, request(206, 'hello'));
check('the config written is one pfSense parses again', ($r['ok'] ?? false) === true, $run->describe());

@mkdir("{$acc_root}/usr/local/share/mudmap", 0755, true);
file_put_contents("{$acc_root}/usr/local/share/mudmap/agent.php", '<?php // installed agent');
[$run, $r] = call_once($acc_root, request(207, 'access.remove', ['authorized_key' => $line_a2, 'agent' => true]));
check(
    'access.remove: removed, the other Mudmap line remains (others), so the agent is kept',
    ($r['result']['removed'] ?? null) === true && ($r['result']['others'] ?? null) === ["mudmap:{$other_instance}:fw-7"]
        && ($r['result']['agent_removed'] ?? null) === false && schema_errors($r['result'] ?? null, ACCESS_REMOVED) === []
        && is_file("{$acc_root}/usr/local/share/mudmap/agent.php"),
    $run->describe(),
);
check('access.remove: only its line gone, admin\'s keys and the other line kept, in config and root\'s file', admin_keys($acc_root) === $admin_own . "\n" . $line_b . "\n" && root_keys_file($acc_root) === admin_keys($acc_root), json_encode(admin_keys($acc_root)));
check('access.remove: config_hash of the written config', ($r['result']['config_hash'] ?? null) === 'sha256:' . hash_file('sha256', "{$acc_root}/cf/conf/config.xml"));
$before = tree_digest($acc_root);
[$run, $r] = call_once($acc_root, request(208, 'access.remove', ['authorized_key' => $line_a2]));
check('access.remove again: removed false, nothing written', ($r['result']['removed'] ?? null) === false && ($r['result']['agent_removed'] ?? null) === false && tree_digest($acc_root) === $before, $run->describe());
[$run, $r] = call_once($acc_root, request(209, 'access.remove', ['authorized_key' => $line_b, 'agent' => 'yes']));
check('access.remove with agent not a boolean: invalid_params', error_code($r) === 'invalid_params' && tree_digest($acc_root) === $before, $run->describe());
[$run, $r] = call_once($acc_root, request(210, 'access.remove', ['authorized_key' => $line_b . ' x']));
check('access.remove with a line off the template: invalid_params', error_code($r) === 'invalid_params' && tree_digest($acc_root) === $before, $run->describe());
[$run, $r] = call_once($acc_root, request(211, 'access.remove', ['authorized_key' => $line_b, 'agent' => true]));
check(
    'access.remove of the last Mudmap line with agent: removed, agent directory gone, admin\'s keys kept',
    ($r['result']['removed'] ?? null) === true && ($r['result']['others'] ?? null) === [] && ($r['result']['agent_removed'] ?? null) === true
        && !file_exists("{$acc_root}/usr/local/share/mudmap") && admin_keys($acc_root) === $admin_own . "\n"
        && root_keys_file($acc_root) === $admin_own . "\n",
    $run->describe(),
);

echo "# writes that do not take effect, and a non-root agent\n";
$fail_root = fresh_root();
$before = tree_digest($fail_root);
[$run, $r] = call_once($fail_root, request(220, 'access.ensure', ['authorized_key' => $line_a]), ['MUDMAP_STUB_FAULT' => 'write_fails']);
check('write_config() failing: write_failed naming write_config(), config.xml unchanged', error_code($r) === 'write_failed' && str_contains($r['error']['message'] ?? '', 'write_config()') && hash_file('sha256', "{$fail_root}/cf/conf/config.xml") === $before['cf/conf/config.xml'], $run->describe());
$lost_root = fresh_root();
[$run, $r] = call_once($lost_root, request(221, 'access.ensure', ['authorized_key' => $line_a]), ['MUDMAP_STUB_FAULT' => 'keys_lost']);
check('root\'s authorized_keys not written: write_failed saying which file', error_code($r) === 'write_failed' && str_contains($r['error']['message'] ?? '', '/root/.ssh/authorized_keys'), $run->describe());
$nonroot_root = fresh_root();
$before = tree_digest($nonroot_root);
foreach (['status' => null, 'config.get' => null, 'access.ensure' => ['authorized_key' => $line_a], 'diag.reboot' => null] as $method => $params) {
    [$run, $r] = call_once($nonroot_root, request(222, $method, $params), ['MUDMAP_AGENT_EUID' => '2000']);
    check("{$method} as uid 2000: not_root naming the uid, nothing done", error_code($r) === 'not_root' && str_contains($r['error']['message'] ?? '', 'uid 2000') && tree_digest($nonroot_root) === $before, $run->describe());
}
[$run, $r] = call_once($nonroot_root, request(223, 'hello'), ['MUDMAP_AGENT_EUID' => '2000']);
check('hello as uid 2000: answered, euid 2000', ($r['result']['euid'] ?? null) === 2000 && ($r['result']['agent_version'] ?? null) === '1.2.0', $run->describe());

echo "# account.remove (the service account of agents before 1.2.0)\n";
$legacy_user = static fn (string $descr): string => "\t\t<user>\n\t\t\t<name>mudmap</name>\n\t\t\t<descr><![CDATA[{$descr}]]></descr>\n"
    . "\t\t\t<scope>user</scope>\n\t\t\t<bcrypt-hash>\$2y\$10\$0000000000000000000000.fixture.not.a.real.hash.000000</bcrypt-hash>\n"
    . "\t\t\t<uid>2000</uid>\n\t\t\t<priv>user-shell-access</priv>\n\t\t\t<authorizedkeys>" . base64_encode($line_a . "\n") . "</authorizedkeys>\n\t\t</user>\n";
$with_user = static function (string $root, string $descr) use ($legacy_user, $line_a): void {
    $file = "{$root}/cf/conf/config.xml";
    file_put_contents($file, str_replace("\t\t<nextuid>", $legacy_user($descr) . "\t\t<nextuid>", (string) file_get_contents($file)));
    @mkdir("{$root}/tmp", 0755, true);
    file_put_contents("{$root}/tmp/mudmap_stub_accounts.json", json_encode(['mudmap' => ['uid' => 2000, 'shell' => '/bin/tcsh', 'home' => '/home/mudmap', 'authorized_keys' => $line_a . "\n"]]));
};
$users_in = static function (string $root): array {
    $doc = new DOMDocument();
    $doc->load("{$root}/cf/conf/config.xml");
    $names = [];
    foreach ((new DOMXPath($doc))->query('/pfsense/system/user/name') as $node) {
        $names[] = $node->textContent;
    }
    return $names;
};
$legacy_root = fresh_root();
$before = tree_digest($legacy_root);
foreach (['root' => ['name' => 'root'], 'admin' => ['name' => 'admin'], 'no name' => null] as $what => $params) {
    [$run, $r] = call_once($legacy_root, request(230, 'account.remove', $params));
    check("account.remove of {$what}: invalid_params, nothing written", error_code($r) === 'invalid_params' && tree_digest($legacy_root) === $before, $run->describe());
}
[$run, $r] = call_once($legacy_root, request(231, 'account.remove', ['name' => 'mudmap']));
check('account.remove without such a user: removed false, nothing written', ($r['result'] ?? null) === ['removed' => false] && tree_digest($legacy_root) === $before, $run->describe());
$with_user($legacy_root, 'Somebody else\'s mudmap user');
$before = tree_digest($legacy_root);
[$run, $r] = call_once($legacy_root, request(232, 'account.remove', ['name' => 'mudmap']));
check('account.remove of a "mudmap" user without Mudmap\'s description: conflict, left alone', error_code($r) === 'conflict' && tree_digest($legacy_root) === $before, $run->describe());
$legacy_root = fresh_root();
$with_user($legacy_root, 'Mudmap service account: its SSH key can only run the Mudmap agent');
[$run, $r] = call_once($legacy_root, request(233, 'account.remove', ['name' => 'mudmap']));
$accounts = json_decode((string) file_get_contents("{$legacy_root}/tmp/mudmap_stub_accounts.json"), true);
check(
    'account.remove of the legacy account: removed from config.xml and the system (local_user_del), admin kept',
    ($r['result'] ?? null) === ['removed' => true] && $users_in($legacy_root) === ['admin'] && !isset($accounts['mudmap'])
        && str_contains((string) file_get_contents("{$legacy_root}/cf/conf/config.xml"), 'Mudmap: removed the service account mudmap'),
    $run->describe(),
);
[$run, $r] = call_once($legacy_root, request(234, 'account.remove', ['name' => 'mudmap', 'agent' => true]));
check('account.remove again: removed false', ($r['result'] ?? null) === ['removed' => false], $run->describe());

echo "# service.control\n";
$svc_root = fresh_root();
[$run, $r] = call_once($svc_root, request(300, 'service.control', ['name' => 'unbound', 'action' => 'stop']));
check('service.control stop: the service as status lists it, now stopped', ($r['result'] ?? null) === ['name' => 'unbound', 'description' => 'DNS Resolver', 'status' => 'stopped'], $run->describe());
[, $r] = call_once($svc_root, request(301, 'status'));
$unbound = array_values(array_filter($r['result']['services'] ?? [], static fn ($s) => $s['name'] === 'unbound'))[0] ?? null;
check('service.control stop: status agrees', ($unbound['status'] ?? null) === 'stopped', json_encode($unbound));
[, $r] = call_once($svc_root, request(302, 'service.control', ['name' => 'unbound', 'action' => 'restart']));
check('service.control restart: running again', ($r['result']['status'] ?? null) === 'running', json_encode($r));
[, $r] = call_once($svc_root, request(303, 'service.control', ['name' => 'no-such-daemon', 'action' => 'start']));
check('service.control of an unknown service: not_found', error_code($r) === 'not_found', json_encode($r));
[, $r] = call_once($svc_root, request(304, 'service.control', ['name' => 'unbound', 'action' => 'explode']));
check('service.control with another action: invalid_params', error_code($r) === 'invalid_params', json_encode($r));
[, $r] = call_once($svc_root, request(305, 'service.control', ['name' => 'unbound', 'action' => 'stop']), ['MUDMAP_STUB_API' => 'bare']);
check('service.control without pfSense\'s service functions: internal', error_code($r) === 'internal', json_encode($r));

echo "# dhcp.leases, arp.table, packages.list (read-only)\n";
$read_root = fresh_root();
$read_before = tree_digest($read_root);
[$run, $r] = call_once($read_root, request(400, 'dhcp.leases'));
$leases = $r['result'] ?? null;
check('call dhcp.leases: exit 0, ok, nothing on stderr', $run->status === 0 && ($r['ok'] ?? false) === true && $run->stderr === '', $run->describe());
$errors = schema_errors($leases, DHCP_LEASES);
check('dhcp.leases: result has exactly the DhcpLeases fields and types', $errors === [], implode('; ', $errors));
$lease = static fn (string $ip, string $mac, string $hostname, string $if, string $kind, string $state, bool $online, ?int $ends): array => [
    'ip' => $ip, 'mac' => $mac, 'hostname' => $hostname, 'interface' => $if, 'kind' => $kind, 'state' => $state,
    'online' => $online, 'ends_at' => $ends,
];
check(
    'dhcp.leases: system_get_dhcpleases() mapped (UTC end times, online from ARP, interface from the DHCP range or subnet, MAC lower-cased)',
    ($leases['leases'] ?? null) === [
        $lease('172.16.10.50', '00:0c:29:cc:dd:01', 'dmz-web', 'opt1', 'dynamic', 'active', false, 1893463200),
        $lease('192.168.1.10', '00:0c:29:aa:bb:10', 'printer', 'lan', 'static', 'static', true, null),
        $lease('192.168.1.20', '00:0c:29:aa:bb:20', 'nas', 'lan', 'static', 'static', false, null),
        $lease('192.168.1.100', '00:0c:29:aa:bb:01', 'laptop-anna', 'lan', 'dynamic', 'active', true, 1893456000),
        $lease('192.168.1.105', '00:0c:29:aa:bb:03', 'old-phone', 'lan', 'dynamic', 'expired', false, 1700000000),
        $lease('192.168.1.120', '00:0c:29:aa:bb:02', '', 'lan', 'dynamic', 'active', false, 1893459600),
    ],
    json_encode($leases),
);
$ips = array_column($leases['leases'] ?? [], 'ip');
$as_strings = $ips;
sort($as_strings, SORT_STRING);
check('dhcp.leases: sorted by address numerically (.20 before .100), not as text', $ips !== $as_strings && $ips === ['172.16.10.50', '192.168.1.10', '192.168.1.20', '192.168.1.100', '192.168.1.105', '192.168.1.120'], json_encode($ips));
[, $r] = call_once($read_root, request(401, 'dhcp.leases', ['unexpected' => true]));
check('dhcp.leases with unexpected params: ignored, same answer', ($r['result'] ?? null) === $leases, json_encode($r));

[$run, $r] = call_once($read_root, request(402, 'arp.table'));
$arp = $r['result'] ?? null;
check('call arp.table: exit 0, ok', $run->status === 0 && ($r['ok'] ?? false) === true, $run->describe());
$errors = schema_errors($arp, ARP_TABLE);
check('arp.table: result has exactly the ArpTable fields and types', $errors === [], implode('; ', $errors));
$entry = static fn (string $ip, string $mac, string $if, string $hostname, ?int $expires): array => [
    'ip' => $ip, 'mac' => $mac, 'interface' => $if, 'hostname' => $hostname, 'expires_secs' => $expires,
];
check(
    'arp.table: in arp(8) order; permanent => null, expired => 0, "?" => "", incomplete entry left out',
    ($arp['entries'] ?? null) === [
        $entry('198.51.100.1', '00:00:5e:00:53:01', 'igb0', '', null),
        $entry('198.51.100.10', '00:08:a2:0c:00:00', 'igb0', '', null),
        $entry('192.168.1.1', '00:08:a2:0c:00:01', 'igb1', '', null),
        $entry('192.168.1.100', '00:0c:29:aa:bb:01', 'igb1', '', 1199),
        $entry('192.168.1.10', '00:0c:29:aa:bb:10', 'igb1', 'printer.example.org', 842),
        $entry('192.168.1.130', '00:0c:29:aa:bb:04', 'igb1', '', 0),
    ],
    json_encode($arp),
);

[$run, $r] = call_once($read_root, request(403, 'packages.list'));
$packages = $r['result'] ?? null;
$errors = schema_errors($packages, PACKAGES);
check('call packages.list: exit 0, ok, exactly the Packages fields and types', $run->status === 0 && $errors === [], implode('; ', $errors) . ' ' . $run->describe());
check(
    'packages.list: installedpackages/package, sorted by name regardless of case (acme, Cron, haproxy)',
    ($packages['packages'] ?? null) === [
        ['name' => 'acme', 'version' => '0.7.5', 'description' => 'Automated Certificate Management Environment, for automated use of LetsEncrypt certificates.'],
        ['name' => 'Cron', 'version' => '0.3.8_3', 'description' => 'The cron utility is used to manage commands on a schedule.'],
        ['name' => 'haproxy', 'version' => '0.63_2', 'description' => 'The Reliable, High Performance TCP/HTTP(S) Load Balancer.'],
    ],
    json_encode($packages),
);
$no_packages_root = fresh_root();
$xml = (string) file_get_contents("{$no_packages_root}/cf/conf/config.xml");
file_put_contents("{$no_packages_root}/cf/conf/config.xml", preg_replace('#\t\t<package>.*?</package>\n#s', '', $xml));
[, $r] = call_once($no_packages_root, request(404, 'packages.list'));
check('packages.list without installed packages: an empty list', ($r['result'] ?? null) === ['packages' => []], json_encode($r));

foreach (['2.6', '2.8'] as $api) {
    $run = run_agent($read_root, ['serve'], implode("\n", [request(405, 'dhcp.leases'), request(406, 'arp.table'), request(407, 'packages.list')]) . "\n", ['MUDMAP_STUB_API' => $api]);
    $results = array_map(static fn ($r) => $r['result'] ?? null, $run->responses() ?? []);
    check("pfSense {$api} API: same dhcp.leases, arp.table and packages.list", $results === [$leases, $arp, $packages], $run->describe());
}
check('dhcp.leases, arp.table and packages.list changed nothing outside tmp/', tree_digest($read_root) === $read_before);

echo "# dhcp.leases and arp.table without system.inc's functions\n";
$bare_root = fresh_root();
[$run, $r] = call_once($bare_root, request(410, 'dhcp.leases'), ['MUDMAP_STUB_API' => 'bare']);
check(
    'system_get_dhcpleases() missing: the config\'s static mappings only, sorted, offline, no end',
    ($r['result']['leases'] ?? null) === [
        $lease('192.168.1.10', '00:0c:29:aa:bb:10', 'printer', 'lan', 'static', 'static', false, null),
        $lease('192.168.1.20', '00:0c:29:aa:bb:20', 'nas', 'lan', 'static', 'static', false, null),
    ],
    $run->describe(),
);
check('system_get_dhcpleases() missing: said once on stderr', substr_count($run->stderr, 'system_get_dhcpleases() is missing') === 1, $run->stderr);
[$run, $r] = call_once($bare_root, request(411, 'arp.table'), ['MUDMAP_STUB_API' => 'bare']);
check(
    'system_get_arp_table() missing and no arp binary: internal, saying why',
    error_code($r) === 'internal' && str_contains($r['error']['message'] ?? '', 'system_get_arp_table()')
        && str_contains($r['error']['message'] ?? '', '/usr/sbin/arp') && $run->status === 0,
    $run->describe(),
);
// A stand-in for FreeBSD's arp(8): the whole libxo document, only for the arguments pfSense uses.
@mkdir("{$bare_root}/usr/sbin", 0755, true);
file_put_contents("{$bare_root}/usr/sbin/arp", <<<'SH'
#!/bin/sh
[ "$*" = "--libxo json -an" ] || { echo "arp: unexpected arguments: $*" >&2; exit 64; }
cat <<'JSON'
{"__version": "1", "arp": {"arp-cache": [{"hostname":"?","ip-address":"10.0.0.1","mac-address":"0:c:29:1:2:3","interface":"em0","permanent":true,"type":"ethernet"}, {"hostname":"?","ip-address":"10.0.0.9","incomplete":true,"interface":"em0","expired":true,"type":"ethernet"}, {"hostname":"host9.example.org","ip-address":"10.0.0.7","mac-address":"00:0C:29:AA:BB:07","interface":"em0","expires":300,"type":"ethernet"}]}}
JSON
SH);
chmod("{$bare_root}/usr/sbin/arp", 0755);
[$run, $r] = call_once($bare_root, request(412, 'arp.table'), ['MUDMAP_STUB_API' => 'bare']);
check(
    'system_get_arp_table() missing: runs arp --libxo json -an itself (whole libxo document, MACs normalised)',
    ($r['result'] ?? null) === ['entries' => [
        $entry('10.0.0.1', '00:0c:29:01:02:03', 'em0', '', null),
        $entry('10.0.0.7', '00:0c:29:aa:bb:07', 'em0', 'host9.example.org', 300),
    ]],
    $run->describe(),
);

echo "# diag.reboot / diag.shutdown\n";
$power_of = static function (string $root): ?string {
    $file = "{$root}/tmp/mudmap_stub_power";
    return is_file($file) ? (string) file_get_contents($file) : null;
};
$power_root = fresh_root();
[$run, $r] = call_once($power_root, request(420, 'diag.reboot'));
check('call diag.reboot: {"action":"reboot"}, exit 0', ($r['result'] ?? null) === ['action' => 'reboot'] && $run->status === 0 && schema_errors($r['result'] ?? null, POWER_ACCEPTED) === [], $run->describe());
check('call diag.reboot: system_reboot() called once, after the answer', $power_of($power_root) === "reboot\n", json_encode($power_of($power_root)));
$halt_root = fresh_root();
[$run, $r] = call_once($halt_root, request(421, 'diag.shutdown', ['unexpected' => 'params']));
check('call diag.shutdown (unexpected params ignored): {"action":"shutdown"}, system_halt() called', ($r['result'] ?? null) === ['action' => 'shutdown'] && $power_of($halt_root) === "halt\n", $run->describe());

$kill_root = fresh_root();
$run = run_agent($kill_root, ['call'], request(422, 'diag.reboot') . "\n", ['MUDMAP_STUB_FAULT' => 'kill']);
$responses = $run->responses();
check(
    'diag.reboot whose reboot kills the agent at once: the whole answer was already written',
    $responses !== null && count($responses) === 1 && ($responses[0]['result'] ?? null) === ['action' => 'reboot']
        && $power_of($kill_root) === "reboot\n",
    $run->describe(),
);

$serve_power_root = fresh_root();
$session = new Session($serve_power_root);
$session->send(request(423, 'diag.reboot'));
$answer = decode_response((string) $session->receive());
$session->send(request(424, 'hello'));
$next = decode_response((string) $session->receive());
$run = $session->finish();
check(
    'serve: diag.reboot answered, then system_reboot(); the session answers on until the system takes it down',
    ($answer['id'] ?? null) === 423 && ($answer['result'] ?? null) === ['action' => 'reboot']
        && ($next['id'] ?? null) === 424 && ($next['ok'] ?? false) === true
        && $power_of($serve_power_root) === "reboot\n" && $run->status === 0,
    json_encode([$answer, $next]) . ' ' . $run->describe(),
);

$rc_root = fresh_root();
[$run, $r] = call_once($rc_root, request(425, 'diag.reboot'), ['MUDMAP_STUB_API' => 'bare']);
check(
    'system_reboot() missing and no /etc/rc.reboot: internal before anything is done',
    error_code($r) === 'internal' && str_contains($r['error']['message'] ?? '', 'system_reboot()')
        && str_contains($r['error']['message'] ?? '', '/etc/rc.reboot') && $power_of($rc_root) === null,
    $run->describe(),
);
// A stand-in for pfSense's /etc/rc.reboot that records being run.
file_put_contents("{$rc_root}/etc/rc.reboot", "#!/bin/sh\necho rc.reboot >> " . escapeshellarg("{$rc_root}/tmp/mudmap_stub_power") . "\n");
chmod("{$rc_root}/etc/rc.reboot", 0755);
@mkdir("{$rc_root}/tmp", 0755, true);
[$run, $r] = call_once($rc_root, request(426, 'diag.reboot'), ['MUDMAP_STUB_API' => 'bare']);
$deadline = microtime(true) + 10;
// Until the line is written: the stand-in's `>>` creates the file before echo writes to it.
while ($power_of($rc_root) !== "rc.reboot\n" && microtime(true) < $deadline) {
    usleep(100000);
}
check(
    'system_reboot() missing: answered, then /etc/rc.reboot runs in the background (nohup, ~1 s later)',
    ($r['result'] ?? null) === ['action' => 'reboot'] && $run->status === 0 && $power_of($rc_root) === "rc.reboot\n",
    $run->describe() . ' marker ' . json_encode($power_of($rc_root)),
);
[$run, $r] = call_once($rc_root, request(427, 'diag.shutdown'), ['MUDMAP_STUB_API' => 'bare']);
check('system_halt() missing and no /etc/rc.halt: internal', error_code($r) === 'internal' && str_contains($r['error']['message'] ?? '', '/etc/rc.halt'), $run->describe());

echo "\n" . ($failures === 0 ? "all {$checks} checks passed" : "{$failures} of {$checks} checks FAILED") . "\n";
exit($failures === 0 ? 0 : 1);
