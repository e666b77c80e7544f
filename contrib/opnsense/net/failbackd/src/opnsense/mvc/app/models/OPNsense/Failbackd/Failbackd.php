<?php

/*
 * Copyright (C) 2026 failbackd developers
 * All rights reserved. BSD-2-Clause.
 */

namespace OPNsense\Failbackd;

use OPNsense\Base\BaseModel;
use OPNsense\Base\Messages\Message;

/**
 * failbackd settings. performValidation() adds the cross-field rules `failbackd check-config`
 * enforces (src/config/validate.rs), so the GUI refuses what the daemon would refuse.
 */
class Failbackd extends BaseModel
{
    public function performValidation($validateFullModel = false)
    {
        $messages = parent::performValidation($validateFullModel);
        $general = $this->general;
        if ((int)(string)$general->max_hold < (int)(string)$general->min_hold) {
            $messages->appendMessage(new Message(
                gettext('The maximum hold must not be shorter than the minimum hold.'),
                'general.max_hold'
            ));
        }
        foreach ($this->probes->probe->iterateItems() as $uuid => $probe) {
            if (!$validateFullModel && !$probe->isFieldChanged()) {
                continue;
            }
            $key = 'probes.probe.' . $uuid;
            $type = (string)$probe->type;
            $interval = (int)(string)$probe->interval;
            $timeout = (string)$probe->timeout;
            if ($timeout !== '' && (int)$timeout > $interval) {
                $messages->appendMessage(new Message(
                    gettext('The timeout must not be longer than the interval.'),
                    $key . '.timeout'
                ));
            }
            $target = (string)$probe->target;
            if ($type == 'icmp' && filter_var($target, FILTER_VALIDATE_IP) === false) {
                $messages->appendMessage(new Message(
                    gettext('An ICMP target is an IPv4 or IPv6 address (no names: DNS may not work at boot).'),
                    $key . '.target'
                ));
            } elseif ($type == 'tcp' && !preg_match('/^(\[[0-9a-fA-F:.]+\]|[0-9.]+):[0-9]{1,5}$/', $target)) {
                $messages->appendMessage(new Message(
                    gettext('A TCP target is address:port, e.g. 192.0.2.10:389 or [2001:db8::1]:443.'),
                    $key . '.target'
                ));
            } elseif ($type == 'http' && strpos($target, 'http://') !== 0) {
                $messages->appendMessage(new Message(
                    gettext('An HTTP target is a plain http:// URL.'),
                    $key . '.target'
                ));
            } elseif ($type == 'command' && trim((string)$probe->command) === '') {
                $messages->appendMessage(new Message(
                    gettext('A command probe needs a command.'),
                    $key . '.command'
                ));
            }
        }
        return $messages;
    }
}
