<?php

/*
 * Copyright (C) 2026 failbackd developers
 * All rights reserved. BSD-2-Clause.
 */

namespace OPNsense\Failbackd;

use OPNsense\Base\BaseModel;
use OPNsense\Base\Messages\Message;
use OPNsense\Core\Backend;

/**
 * failbackd settings. The field constraints (Failbackd.xml) only bound the form; whether a
 * setting is valid is decided by the daemon itself: performValidation() hands the candidate to
 * configd (`failbackd validate`, scripts/failbackd/validate_candidate.py), which renders it with
 * the same template and engine as `template reload` and runs `failbackd check-config` on the
 * result. No rule of src/config/validate.rs is copied here, so the two cannot drift.
 */
class Failbackd extends BaseModel
{
    /** check-config's TOML keys, as the form fields they come from. */
    private const GENERAL_FIELDS = [
        'watch' => 'interfaces',
        'hold_on_boot' => 'hold_on_boot',
        'min_hold' => 'min_hold',
        'stable_for' => 'stable_for',
        'max_hold' => 'max_hold',
        'max_hold_policy' => 'max_hold_policy',
        'mode' => 'backend_mode',
    ];
    private const PROBE_FIELDS = [
        'gateways' => 'gateways', 'accept' => 'gateway_accept', 'target' => 'target',
        'expect_status' => 'expect_status', 'connections' => 'connections', 'command' => 'command',
        'interval' => 'interval', 'fast_interval' => 'fast_interval',
        'down_interval' => 'down_interval', 'timeout' => 'timeout', 'rise' => 'rise', 'fall' => 'fall',
    ];

    public function performValidation($validateFullModel = false)
    {
        $messages = parent::performValidation($validateFullModel);
        if (count($messages) > 0) {
            // The form's own bounds first: the daemon is only asked about well-formed values.
            return $messages;
        }
        foreach ($this->daemonErrors() as $error) {
            $messages->appendMessage(new Message($error['message'], $this->fieldFor($error)));
        }
        return $messages;
    }

    /**
     * @return array list of ['probe' => ?string, 'key' => ?string, 'message' => string]
     */
    private function daemonErrors()
    {
        $candidate = tempnam(sys_get_temp_dir(), 'failbackd-candidate-');
        if ($candidate === false || file_put_contents($candidate, $this->toXML()->asXML()) === false) {
            return [['probe' => null, 'key' => null, 'message' => gettext('Cannot write the candidate settings.')]];
        }
        $answer = json_decode(trim((new Backend())->configdpRun('failbackd validate', [$candidate])), true);
        @unlink($candidate);
        if (!is_array($answer) || !isset($answer['valid'])) {
            // Unknown is not valid: a setting the daemon was not asked about is not saved.
            return [['probe' => null, 'key' => null,
                'message' => gettext('failbackd could not check the settings (configd: failbackd validate).')]];
        }
        return $answer['valid'] ? [] : $answer['errors'];
    }

    /** The form field a check-config error belongs to, so the message shows next to it. */
    private function fieldFor(array $error)
    {
        $key = $error['key'] ?? null;
        if (!empty($error['probe'])) {
            foreach ($this->probes->probe->iterateItems() as $uuid => $probe) {
                if ((string)$probe->name === $error['probe']) {
                    $field = self::PROBE_FIELDS[$key] ?? 'name';
                    return 'probes.probe.' . $uuid . '.' . $field;
                }
            }
        }
        return 'general.' . (self::GENERAL_FIELDS[$key] ?? 'enabled');
    }
}
