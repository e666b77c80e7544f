<?php

/*
 * Copyright (C) 2026 failbackd developers
 * All rights reserved. BSD-2-Clause.
 */

namespace OPNsense\Failbackd\Api;

use OPNsense\Base\ApiMutableModelControllerBase;

/**
 * /api/failbackd/settings/{get,set} for the form and {search,get,add,set,del,toggle}Probe for
 * the probe grid (the ArrayField pattern of net/ndp-proxy-go's searchAliasAction).
 */
class SettingsController extends ApiMutableModelControllerBase
{
    protected static $internalModelClass = '\OPNsense\Failbackd\Failbackd';
    protected static $internalModelName = 'failbackd';

    public function searchProbeAction()
    {
        return $this->searchBase('probes.probe', ['enabled', 'name', 'type', 'interval', 'rise', 'fall', 'required']);
    }

    public function getProbeAction($uuid = null)
    {
        return $this->getBase('probe', 'probes.probe', $uuid);
    }

    public function addProbeAction()
    {
        return $this->addBase('probe', 'probes.probe');
    }

    public function setProbeAction($uuid)
    {
        return $this->setBase('probe', 'probes.probe', $uuid);
    }

    public function delProbeAction($uuid)
    {
        return $this->delBase('probes.probe', $uuid);
    }

    public function toggleProbeAction($uuid, $enabled = null)
    {
        return $this->toggleBase('probes.probe', $uuid, $enabled);
    }
}
