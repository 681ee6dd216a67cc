// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ProviderRegistry} from "../src/ProviderRegistry.sol";
import {ConferenceEscrow} from "../src/ConferenceEscrow.sol";
import {EscrowAnnex} from "../src/EscrowAnnex.sol";

/// @notice The forge cheatcodes this script uses (forge-std cannot be installed here; forge has them built in).
interface Vm {
    function envUint(string calldata name) external view returns (uint256);
    function envOr(string calldata name, uint256 defaultValue) external view returns (uint256);
    function envOr(string calldata name, address defaultValue) external view returns (address);
    function addr(uint256 privateKey) external pure returns (address);
    function startBroadcast(uint256 privateKey) external;
    function stopBroadcast() external;
}

/// @title Deploy
/// @notice Deploys ProviderRegistry and ConferenceEscrow (which deploys its OfferBook). Run through
/// script/deploy.sh, which also records the deployment in deployments/<chainId>.json.
/// Environment: DEPLOYER_PRIVATE_KEY (required); ADMIN, OPERATOR (default: the deployer);
/// ACTIVATION_WINDOW (600), SETTLEMENT_WINDOW (86400), VOTING_PERIOD (259200), in seconds.
contract Deploy {
    Vm private constant VM = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    function run() external returns (ProviderRegistry registry, ConferenceEscrow escrow) {
        uint256 key = VM.envUint("DEPLOYER_PRIVATE_KEY");
        address deployer = VM.addr(key);
        address admin = VM.envOr("ADMIN", deployer);
        address operator = VM.envOr("OPERATOR", deployer);
        uint40 activationWindow = _seconds("ACTIVATION_WINDOW", 600);
        uint40 settlementWindow = _seconds("SETTLEMENT_WINDOW", 86400);
        uint40 votingPeriod = _seconds("VOTING_PERIOD", 259200);

        VM.startBroadcast(key);
        registry = new ProviderRegistry();
        escrow = new ConferenceEscrow(
            admin, operator, registry, activationWindow, settlementWindow, votingPeriod, new EscrowAnnex()
        );
        VM.stopBroadcast();
    }

    function _seconds(string memory name, uint256 defaultValue) private view returns (uint40) {
        uint256 value = VM.envOr(name, defaultValue);
        require(value <= type(uint40).max, string.concat(name, " does not fit in uint40"));
        // casting to 'uint40' is safe because the line above checked the bound
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint40(value);
    }
}
