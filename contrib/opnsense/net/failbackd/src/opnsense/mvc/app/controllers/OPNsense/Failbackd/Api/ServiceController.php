<?php

/*
 * Copyright (C) 2026 failbackd developers
 * All rights reserved. BSD-2-Clause.
 */

namespace OPNsense\Failbackd\Api;

use OPNsense\Base\ApiMutableServiceControllerBase;
use OPNsense\Core\Backend;

/**
 * start/stop/restart/reconfigure/status come from ApiMutableServiceControllerBase (opnsense/core:
 * reconfigure = template reload OPNsense/Failbackd, then start or stop by general.enabled).
 * state, hold and release run the failbackd CLI through configd (actions_failbackd.conf).
 */
class ServiceController extends ApiMutableServiceControllerBase
{
    protected static $internalServiceClass = '\OPNsense\Failbackd\Failbackd';
    protected static $internalServiceTemplate = 'OPNsense/Failbackd';
    protected static $internalServiceEnabled = 'general.enabled';
    protected static $internalServiceName = 'failbackd';

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
        $output = trim((new Backend())->configdRun('failbackd hold'));
        return ['status' => 'ok', 'message' => $output];
    }

    /**
     * POST /api/failbackd/service/release (force=1 to release while required probes are down).
     */
    public function releaseAction()
    {
        if (!$this->request->isPost()) {
            return ['status' => 'failed', 'message' => 'POST only'];
        }
        $action = $this->request->getPost('force') == '1' ? 'failbackd release_force' : 'failbackd release';
        $output = trim((new Backend())->configdRun($action));
        return ['status' => 'ok', 'message' => $output];
    }
}
