<?php

/*
 * Copyright (C) 2026 failbackd developers
 * All rights reserved. BSD-2-Clause.
 */

namespace OPNsense\Failbackd\Api;

use OPNsense\Base\ApiMutableServiceControllerBase;
use OPNsense\Core\Backend;

/**
 * start/stop/restart/status come from ApiMutableServiceControllerBase (opnsense/core).
 * reconfigure (Apply) renders the templates and then reloads a running daemon (SIGHUP keeps a
 * hold and the probe counters), starts a stopped one, or, when disabled, releases, stops and has
 * OPNsense re-evaluate the CARP service status so the node is not left demoted.
 * state, hold and release run the failbackd CLI through configd (actions_failbackd.conf).
 */
class ServiceController extends ApiMutableServiceControllerBase
{
    protected static $internalServiceClass = '\OPNsense\Failbackd\Failbackd';
    protected static $internalServiceTemplate = 'OPNsense/Failbackd';
    protected static $internalServiceEnabled = 'general.enabled';
    protected static $internalServiceName = 'failbackd';

    /** Apply reloads instead of restarting (the base class then runs the `reload` action). */
    protected function reconfigureForceRestart()
    {
        return 0;
    }

    public function reconfigureAction()
    {
        if (!$this->request->isPost()) {
            return ['status' => 'failed'];
        }
        $backend = new Backend();
        $enabled = $this->serviceEnabled();
        if (!$enabled && $this->statusAction()['status'] == 'running') {
            // Disabling while held: a stopped daemon keeps its phase and nothing else would
            // leave CARP maintenance, so release first (a no-op when already released).
            $backend->configdRun('failbackd release_force');
        }
        $result = parent::reconfigureAction();
        if (!$enabled) {
            // The service check now passes (disabled); only a re-run of the evaluation drops a
            // 2^20 demotion it held (core runs it by itself only at boot, early/90-carp).
            $backend->configdRun('interface update carp service_status');
            return $result;
        }
        if ($this->statusAction()['status'] != 'running') {
            $why = trim($backend->configdRun('failbackd check-config'));
            return ['status' => 'failed', 'message' => $why !== '' ? $why : gettext('failbackd did not start')];
        }
        return $result;
    }

    /**
     * GET /api/failbackd/service/state: `failbackd status --json`, or an error object.
     */
    public function stateAction()
    {
        $output = trim((new Backend())->configdRun('failbackd state'));
        $state = json_decode($output, true);
        if (!is_array($state)) {
            return ['error' => $output === '' ? gettext('failbackd is not running') : $output];
        }
        return ['error' => null, 'state' => $state];
    }

    /**
     * POST /api/failbackd/service/hold: demote now and run a failback.
     */
    public function holdAction()
    {
        if (!$this->request->isPost()) {
            return ['status' => 'failed', 'message' => 'POST only'];
        }
        return $this->cliAnswer('failbackd hold');
    }

    /**
     * POST /api/failbackd/service/release (force=1 to release while required probes are down).
     */
    public function releaseAction()
    {
        if (!$this->request->isPost()) {
            return ['status' => 'failed', 'message' => 'POST only'];
        }
        $force = $this->request->getPost('force') == '1';
        return $this->cliAnswer($force ? 'failbackd release_force' : 'failbackd release');
    }

    /**
     * The CLI's own answer and its exit status: the actions print the output (stderr included)
     * and then "exit N" (actions_failbackd.conf), so a refusal shows the daemon's reason.
     */
    private function cliAnswer($action)
    {
        $output = rtrim((new Backend())->configdRun($action));
        if (preg_match('/^(.*?)\n?exit (\d+)$/s', $output, $m)) {
            return ['status' => $m[2] === '0' ? 'ok' : 'failed', 'message' => trim($m[1])];
        }
        return ['status' => 'failed', 'message' => $output];
    }
}
